// Finite-volume conduction operator of one multigrid level (paper Section 3.4; NOTES §7).
// Storage (C order, float32): g0/g1/g2 [n0*n1*n2] are the conductances of the face between
// voxel i and i+1 along axis 0/1/2 (zero in the last layer); gin/gout [n1*n2] the Dirichlet
// conductances of the first/last layer along axis 0 (the flow axis).
// Row i of A: sum_j g_ij (z_i - z_j) + gin z_i [first layer] + gout z_i [last layer].
// NumPy twins: cbagpu/transport/operator.py (Level.apply, Level.gauss_seidel,
// Level.residual_restricted, Level.add_prolonged); Numba twins: cbagpu/transport/cpu_kernels.py.

// (sum_j g_ij z_j, diagonal) at voxel (i, j, k)
template <typename T>
__device__ __forceinline__ void cba_point(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const T* z,
    const long long i, const long long j, const long long k,
    const long long n0, const long long n1, const long long n2, double* s_out, double* d_out)
{
    const long long p = (i * n1 + j) * n2 + k;
    const long long plane = n1 * n2;
    double s = 0.0, d = 0.0, g;
    if (i > 0) { g = g0[p - plane]; s += g * (double)z[p - plane]; d += g; }
    else { d += gin[j * n2 + k]; }
    if (i < n0 - 1) { g = g0[p]; s += g * (double)z[p + plane]; d += g; }
    else { d += gout[j * n2 + k]; }
    if (j > 0) { g = g1[p - n2]; s += g * (double)z[p - n2]; d += g; }
    if (j < n1 - 1) { g = g1[p]; s += g * (double)z[p + n2]; d += g; }
    if (k > 0) { g = g2[p - 1]; s += g * (double)z[p - 1]; d += g; }
    if (k < n2 - 1) { g = g2[p]; s += g * (double)z[p + 1]; d += g; }
    *s_out = s;
    *d_out = d;
}

// out = A z
template <typename T>
__device__ __forceinline__ void cba_apply_t(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const T* __restrict__ z,
    float* __restrict__ out, const int n0, const int n1, const int n2)
{
    const long long n = (long long)n0 * n1 * n2;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < n;
         p += (long long)gridDim.x * blockDim.x) {
        const long long k = p % n2, t = p / n2, j = t % n1, i = t / n1;
        double s, d;
        cba_point<T>(g0, g1, g2, gin, gout, z, i, j, k, n0, n1, n2, &s, &d);
        out[p] = (float)(d * (double)z[p] - s);
    }
}

extern "C" __global__ void cba_apply_f32(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ z,
    float* __restrict__ out, const int n0, const int n1, const int n2)
{
    cba_apply_t<float>(g0, g1, g2, gin, gout, z, out, n0, n1, n2);
}

extern "C" __global__ void cba_apply_f64(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const double* __restrict__ z,
    float* __restrict__ out, const int n0, const int n1, const int n2)
{
    cba_apply_t<double>(g0, g1, g2, gin, gout, z, out, n0, n1, n2);
}

// The kernels' bodies take the work items start, start + stride, ... (a launch: the thread's
// global index and the grid's size), so that cba_vcycle_coarse runs them one after the other
// in one launch. Fields written inside one launch (r, z) carry no __restrict__: their reads
// must not go through the read-only cache.

// Half a red-black Gauss-Seidel sweep in place: voxels with (i + j + k) % 2 == color and a
// non-zero diagonal get (r + s) / D.  They only read voxels of the other colour.
__device__ __forceinline__ void cba_gauss_seidel_items(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* r,
    float* z, const int n0, const int n1, const int n2, const int color,
    const long long start, const long long stride)
{
    const long long n = (long long)n0 * n1 * n2;
    for (long long p = start; p < n; p += stride) {
        const long long k = p % n2, t = p / n2, j = t % n1, i = t / n1;
        if (((i + j + k) & 1) != color) continue;
        double s, d;
        cba_point<float>(g0, g1, g2, gin, gout, z, i, j, k, n0, n1, n2, &s, &d);
        if (d > 0.0) z[p] = (float)(((double)r[p] + s) / d);
    }
}

extern "C" __global__ void cba_gauss_seidel(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ r,
    float* z, const int n0, const int n1, const int n2, const int color)
{
    cba_gauss_seidel_items(g0, g1, g2, gin, gout, r, z, n0, n1, n2, color,
                           (long long)blockIdx.x * blockDim.x + threadIdx.x,
                           (long long)gridDim.x * blockDim.x);
}

// rc = R (r - A z): residuals summed over 2x2x2 blocks
__device__ __forceinline__ void cba_residual_restrict_items(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* r,
    const float* z, float* rc, const int n0, const int n1, const int n2, const int c0,
    const int c1, const int c2, const long long start, const long long stride)
{
    const long long n = (long long)c0 * c1 * c2;
    for (long long q = start; q < n; q += stride) {
        const long long kc = q % c2, t = q / c2, jc = t % c1, ic = t / c1;
        double acc = 0.0;
        for (long long i = 2 * ic; i < 2 * ic + 2 && i < n0; ++i)
            for (long long j = 2 * jc; j < 2 * jc + 2 && j < n1; ++j)
                for (long long k = 2 * kc; k < 2 * kc + 2 && k < n2; ++k) {
                    const long long p = (i * n1 + j) * n2 + k;
                    double s, d;
                    cba_point<float>(g0, g1, g2, gin, gout, z, i, j, k, n0, n1, n2, &s, &d);
                    acc += (double)r[p] - (d * (double)z[p] - s);
                }
        rc[q] = (float)acc;
    }
}

extern "C" __global__ void cba_residual_restrict(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ r,
    const float* __restrict__ z, float* __restrict__ rc, const int n0, const int n1,
    const int n2, const int c0, const int c1, const int c2)
{
    cba_residual_restrict_items(g0, g1, g2, gin, gout, r, z, rc, n0, n1, n2, c0, c1, c2,
                                (long long)blockIdx.x * blockDim.x + threadIdx.x,
                                (long long)gridDim.x * blockDim.x);
}

// z += P ec: every voxel gets the value of its 2x2x2 parent
extern "C" __global__ void cba_add_prolonged(
    float* __restrict__ z, const float* __restrict__ ec, const int n0, const int n1,
    const int n2, const int c1, const int c2)
{
    const long long n = (long long)n0 * n1 * n2;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < n;
         p += (long long)gridDim.x * blockDim.x) {
        const long long k = p % n2, t = p / n2, j = t % n1, i = t / n1;
        z[p] += ec[((i / 2) * c1 + j / 2) * c2 + k / 2];
    }
}

// ======================================================================================
// The fused preconditioned-conjugate-gradient iteration of the transport solver (paper
// Section 3.4; NOTES §7) for float32 fields: the V-cycle's smoothing fused with its zeroing
// and its prolongation, the coarsest solve as one launch, the CG vector updates fused with
// their dot products, the scalars (rz, pq, alpha, beta, the stall flag) kept on the device,
// and the cross-section fluxes of the convergence check in one launch. One iteration on a
// hierarchy of L levels is 5 L - 1 launches and no host read; the host reads the fluxes and
// the scalars together every few iterations (cbagpu/transport/device_pcg.py).
//
// Storage as in transport.cu (g0/g1/g2, gin/gout float32; fields float32, C order).
// Reductions go to one float64 value per block (`part`, `nparts` blocks), and every block of
// the next launch sums those partials itself (a fixed order within a launch geometry).
// Scalars (float64) `s`: see S_* below; the host never reads them inside the loop.
// NumPy twins: cbagpu/transport/device_pcg.py (*_twin).

#define S_RZ 0
#define S_RZ_OLD 1
#define S_PQ 2
#define S_RZ0 3
#define S_STALL 4
#define S_STALL_IT 5
#define S_COUNT 8
#define CBA_PCG_THREADS 256

// Sum of v over the block (blockDim.x a power of two, at most CBA_PCG_THREADS); every thread
// of the block must call it.
__device__ __forceinline__ double cba_block_sum(double v, double* sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    const double out = sh[0];
    __syncthreads();
    return out;
}

__device__ __forceinline__ double cba_sum_parts(const double* part, const int nparts, double* sh)
{
    double v = 0.0;
    for (int t = threadIdx.x; t < nparts; t += blockDim.x) v += part[t];
    return cba_block_sum(v, sh);
}

// The diagonal of A at (i, j, k), summed in the order of cba_point (transport.cu).
__device__ __forceinline__ double cba_diag(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const long long i,
    const long long j, const long long k, const long long n0, const long long n1,
    const long long n2)
{
    const long long p = (i * n1 + j) * n2 + k;
    const long long plane = n1 * n2;
    double d = 0.0;
    if (i > 0) d += g0[p - plane]; else d += gin[j * n2 + k];
    if (i < n0 - 1) d += g0[p]; else d += gout[j * n2 + k];
    if (j > 0) d += g1[p - n2];
    if (j < n1 - 1) d += g1[p];
    if (k > 0) d += g2[p - 1];
    if (k < n2 - 1) d += g2[p];
    return d;
}

// The value of z at q after z += P ec (one float32 addition, as cba_add_prolonged).
__device__ __forceinline__ float cba_zp(
    const float* z, const float* ec, const long long q, const long long n1,
    const long long n2, const long long c1, const long long c2)
{
    const long long k = q % n2, t = q / n2, j = t % n1, i = t / n1;
    return z[q] + ec[((i / 2) * c1 + j / 2) * c2 + k / 2];
}

// (sum_j g_ij (z_j + ec_parent(j)), diagonal): cba_point of z + P ec.
__device__ __forceinline__ void cba_point_prolonged(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* z,
    const float* ec, const long long i, const long long j, const long long k,
    const long long n0, const long long n1, const long long n2, const long long c1,
    const long long c2, double* s_out, double* d_out)
{
    const long long p = (i * n1 + j) * n2 + k;
    const long long plane = n1 * n2;
    double s = 0.0, d = 0.0, g;
    if (i > 0) { g = g0[p - plane]; s += g * (double)cba_zp(z, ec, p - plane, n1, n2, c1, c2); d += g; }
    else { d += gin[j * n2 + k]; }
    if (i < n0 - 1) { g = g0[p]; s += g * (double)cba_zp(z, ec, p + plane, n1, n2, c1, c2); d += g; }
    else { d += gout[j * n2 + k]; }
    if (j > 0) { g = g1[p - n2]; s += g * (double)cba_zp(z, ec, p - n2, n1, n2, c1, c2); d += g; }
    if (j < n1 - 1) { g = g1[p]; s += g * (double)cba_zp(z, ec, p + n2, n1, n2, c1, c2); d += g; }
    if (k > 0) { g = g2[p - 1]; s += g * (double)cba_zp(z, ec, p - 1, n1, n2, c1, c2); d += g; }
    if (k < n2 - 1) { g = g2[p]; s += g * (double)cba_zp(z, ec, p + 1, n1, n2, c1, c2); d += g; }
    *s_out = s;
    *d_out = d;
}

// z = 0, then the red half-sweep of Gauss-Seidel (colour 0): z = r / D on colour 0 (its
// neighbours are all zero), 0 elsewhere.
__device__ __forceinline__ void cba_gs_zero_first_items(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* r, float* z,
    const int n0, const int n1, const int n2, const long long start, const long long stride)
{
    const long long n = (long long)n0 * n1 * n2;
    for (long long p = start; p < n; p += stride) {
        const long long k = p % n2, t = p / n2, j = t % n1, i = t / n1;
        float v = 0.0f;
        if (((i + j + k) & 1) == 0) {
            const double d = cba_diag(g0, g1, g2, gin, gout, i, j, k, n0, n1, n2);
            if (d > 0.0) v = (float)(((double)r[p] + 0.0) / d);
        }
        z[p] = v;
    }
}

extern "C" __global__ void cba_gs_zero_first(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ r,
    float* __restrict__ z, const int n0, const int n1, const int n2)
{
    cba_gs_zero_first_items(g0, g1, g2, gin, gout, r, z, n0, n1, n2,
                            (long long)blockIdx.x * blockDim.x + threadIdx.x,
                            (long long)gridDim.x * blockDim.x);
}

// z += P ec, then the black half-sweep (colour 1), in one launch: colour-1 voxels get
// (r + sum_j g_ij (z_j + ec_j)) / D (or z + ec where D = 0); colour-0 voxels are left for
// cba_gs_last, which adds their ec.
__device__ __forceinline__ void cba_prolong_gs_items(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* r, float* z,
    const float* ec, const int n0, const int n1, const int n2, const int c1, const int c2,
    const long long start, const long long stride)
{
    const long long n = (long long)n0 * n1 * n2;
    for (long long p = start; p < n; p += stride) {
        const long long k = p % n2, t = p / n2, j = t % n1, i = t / n1;
        if (((i + j + k) & 1) != 1) continue;
        double s, d;
        cba_point_prolonged(g0, g1, g2, gin, gout, z, ec, i, j, k, n0, n1, n2, c1, c2, &s, &d);
        z[p] = d > 0.0 ? (float)(((double)r[p] + s) / d) : cba_zp(z, ec, p, n1, n2, c1, c2);
    }
}

extern "C" __global__ void cba_prolong_gs(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ r,
    float* z, const float* __restrict__ ec, const int n0, const int n1, const int n2,
    const int c1, const int c2)
{
    cba_prolong_gs_items(g0, g1, g2, gin, gout, r, z, ec, n0, n1, n2, c1, c2,
                         (long long)blockIdx.x * blockDim.x + threadIdx.x,
                         (long long)gridDim.x * blockDim.x);
}

// The red half-sweep (colour 0) that ends a V-cycle level: z = (r + sum_j g_ij z_j) / D on
// colour 0 (where D = 0: z + ec if `prolonged`, else unchanged). With `want_dot`, also the
// block partials of r . z over all voxels (the final z) into part[blockIdx.x].
// Returns this thread's share of r . z.
__device__ __forceinline__ double cba_gs_last_items(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* r, float* z,
    const float* ec, const int n0, const int n1, const int n2, const int c1, const int c2,
    const int prolonged, const long long start, const long long stride)
{
    const long long n = (long long)n0 * n1 * n2;
    double acc = 0.0;
    for (long long p = start; p < n; p += stride) {
        const long long k = p % n2, t = p / n2, j = t % n1, i = t / n1;
        float v = z[p];
        if (((i + j + k) & 1) == 0) {
            double s, d;
            cba_point<float>(g0, g1, g2, gin, gout, z, i, j, k, n0, n1, n2, &s, &d);
            if (d > 0.0) v = (float)(((double)r[p] + s) / d);
            else if (prolonged) v = cba_zp(z, ec, p, n1, n2, c1, c2);
            z[p] = v;
        }
        acc += (double)r[p] * (double)v;
    }
    return acc;
}

extern "C" __global__ void cba_gs_last(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ r,
    float* z, const float* __restrict__ ec, const int n0, const int n1, const int n2,
    const int c1, const int c2, const int prolonged, double* part, const int want_dot)
{
    __shared__ double sh[CBA_PCG_THREADS];
    const double acc = cba_gs_last_items(g0, g1, g2, gin, gout, r, z, ec, n0, n1, n2, c1, c2,
                                         prolonged,
                                         (long long)blockIdx.x * blockDim.x + threadIdx.x,
                                         (long long)gridDim.x * blockDim.x);
    if (want_dot) {
        const double b = cba_block_sum(acc, sh);
        if (threadIdx.x == 0) part[blockIdx.x] = b;
    }
}

// z = inv r on the coarsest level (inv: the dense float64 inverse, n x n).
__device__ __forceinline__ void cba_dense_solve_items(
    const double* __restrict__ inv, const float* r, float* z, const int n,
    const long long start, const long long stride)
{
    for (long long i = start; i < n; i += stride) {
        double acc = 0.0;
        const double* row = inv + i * (long long)n;
        for (int j = 0; j < n; ++j) acc += row[j] * (double)r[j];
        z[i] = (float)acc;
    }
}

extern "C" __global__ void cba_dense_solve(
    const double* __restrict__ inv, const float* __restrict__ r, float* __restrict__ z,
    const int n)
{
    cba_dense_solve_items(inv, r, z, n, (long long)blockIdx.x * blockDim.x + threadIdx.x,
                          (long long)gridDim.x * blockDim.x);
}

// p = z + beta p with rz = r . z (from the partials of cba_gs_last) and
// beta = rz / rz_old (0 on the first iteration); block 0 stores rz.
extern "C" __global__ void cba_pcg_direction(
    const float* __restrict__ z, float* __restrict__ p, const double* __restrict__ part,
    const int nparts, double* s, const long long n, const int first)
{
    __shared__ double sh[CBA_PCG_THREADS];
    const double rz = cba_sum_parts(part, nparts, sh);
    const double rz_old = s[S_RZ_OLD];
    const float beta = (first || rz_old == 0.0) ? 0.0f : (float)(rz / rz_old);
    for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < n;
         q += (long long)gridDim.x * blockDim.x) {
        p[q] = p[q] * beta + z[q];
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) s[S_RZ] = rz;
}

// q = A p and the block partials of p . q.
extern "C" __global__ void cba_pcg_apply_dot(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ p,
    float* __restrict__ q, double* part, const int n0, const int n1, const int n2)
{
    __shared__ double sh[CBA_PCG_THREADS];
    const long long n = (long long)n0 * n1 * n2;
    double acc = 0.0;
    for (long long x = (long long)blockIdx.x * blockDim.x + threadIdx.x; x < n;
         x += (long long)gridDim.x * blockDim.x) {
        const long long k = x % n2, t = x / n2, j = t % n1, i = t / n1;
        double s, d;
        cba_point<float>(g0, g1, g2, gin, gout, p, i, j, k, n0, n1, n2, &s, &d);
        const float v = (float)(d * (double)p[x] - s);
        q[x] = v;
        acc += (double)p[x] * (double)v;
    }
    const double b = cba_block_sum(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = b;
}

// alpha = rz / pq; x += alpha p; r -= alpha q -- unless the recursion reached the round-off
// floor (pq <= 0 or rz <= floor rz0) now or earlier: then nothing changes and block 0 records
// the iteration in s (the host sees it at its next check).
extern "C" __global__ void cba_pcg_update(
    float* __restrict__ x, float* __restrict__ r, const float* __restrict__ p,
    const float* __restrict__ q, const double* __restrict__ part, const int nparts, double* s,
    const long long n, const int it, const double floor_)
{
    __shared__ double sh[CBA_PCG_THREADS];
    const double pq = cba_sum_parts(part, nparts, sh);
    const double rz = s[S_RZ];
    const double rz0 = it == 0 ? rz : s[S_RZ0];
    const bool before = s[S_STALL] != 0.0;
    const bool now = !before && (pq <= 0.0 || rz <= floor_ * rz0);
    if (!before && !now) {
        const float alpha = (float)(rz / pq);
        const float minus = -alpha;
        for (long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x; v < n;
             v += (long long)gridDim.x * blockDim.x) {
            x[v] = x[v] + alpha * p[v];
            r[v] = r[v] + minus * q[v];
        }
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        s[S_PQ] = pq;
        if (it == 0) s[S_RZ0] = rz;
        if (now) { s[S_STALL] = 1.0; s[S_STALL_IT] = (double)it; }
        if (!before && !now) s[S_RZ_OLD] = rz;
    }
}

// The fluxes through the inlet, every face layer along axis 0 and the outlet (n0 + 1 values,
// float64 sums of float32 products as slice_fluxes in cbagpu/transport/solver.py); one block
// per layer.
extern "C" __global__ void cba_slice_flux(
    const float* __restrict__ g0, const float* __restrict__ gin, const float* __restrict__ gout,
    const float* __restrict__ x, double* __restrict__ out, const int n0, const int n1,
    const int n2)
{
    __shared__ double sh[CBA_PCG_THREADS];
    const long long plane = (long long)n1 * n2;
    for (long long f = blockIdx.x; f <= n0; f += gridDim.x) {
        double acc = 0.0;
        for (long long q = threadIdx.x; q < plane; q += blockDim.x) {
            float v;
            if (f == 0) v = gin[q] * (1.0f - x[q]);
            else if (f == n0) v = gout[q] * x[(n0 - 1) * plane + q];
            else v = g0[(f - 1) * plane + q] * (x[(f - 1) * plane + q] - x[f * plane + q]);
            acc += (double)v;
        }
        const double b = cba_block_sum(acc, sh);
        if (threadIdx.x == 0) out[f] = b;
    }
}

// ======================================================================================
// The V-cycle below the finest level in one launch (cbagpu/transport/device_pcg.py): a
// persistent kernel (at most one block per multiprocessor, all resident) that runs, for the
// levels 1 .. L-1, the same phases as the launches of the finest level -- zeroing + red
// half-sweep, black half-sweep, residual restriction down; the dense solve on the coarsest;
// prolongation + black half-sweep, red half-sweep up -- with a grid-wide barrier between
// phases. So an iteration costs the finest level's five launches, this one and the CG's
// three, whatever the number of levels. Every level's fields lie in one buffer per field
// (g0, g1, g2, r, z: level l at off[2 l]; gin, gout: at off[2 l + 1]); dims holds the
// shapes (3 per level), r of level 0 here is the restricted residual of the finest level,
// and z of level 0 is its correction. NumPy twin: device_pcg.vcycle_coarse_twin.
#include "cba_grid_sync.h"

extern "C" __global__ void cba_vcycle_coarse(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, float* r, float* z,
    const long long* __restrict__ off, const int* __restrict__ dims, const int nlev,
    const double* __restrict__ inv, unsigned int* bar)
{
    const long long start = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (int l = 0; l < nlev - 1; ++l) {
        const long long v = off[2 * l], a = off[2 * l + 1], vc = off[2 * l + 2];
        const int n0 = dims[3 * l], n1 = dims[3 * l + 1], n2 = dims[3 * l + 2];
        const int c0 = dims[3 * l + 3], c1 = dims[3 * l + 4], c2 = dims[3 * l + 5];
        cba_gs_zero_first_items(g0 + v, g1 + v, g2 + v, gin + a, gout + a, r + v, z + v,
                                n0, n1, n2, start, stride);
        cba_grid_sync(bar);
        cba_gauss_seidel_items(g0 + v, g1 + v, g2 + v, gin + a, gout + a, r + v, z + v,
                               n0, n1, n2, 1, start, stride);
        cba_grid_sync(bar);
        cba_residual_restrict_items(g0 + v, g1 + v, g2 + v, gin + a, gout + a, r + v, z + v,
                                    r + vc, n0, n1, n2, c0, c1, c2, start, stride);
        cba_grid_sync(bar);
    }
    const int last = nlev - 1;
    const long long vl = off[2 * last];
    cba_dense_solve_items(inv, r + vl, z + vl,
                          dims[3 * last] * dims[3 * last + 1] * dims[3 * last + 2], start,
                          stride);
    for (int l = nlev - 2; l >= 0; --l) {
        cba_grid_sync(bar);
        const long long v = off[2 * l], a = off[2 * l + 1], vc = off[2 * l + 2];
        const int n0 = dims[3 * l], n1 = dims[3 * l + 1], n2 = dims[3 * l + 2];
        const int c1 = dims[3 * l + 4], c2 = dims[3 * l + 5];
        cba_prolong_gs_items(g0 + v, g1 + v, g2 + v, gin + a, gout + a, r + v, z + v, z + vc,
                             n0, n1, n2, c1, c2, start, stride);
        cba_grid_sync(bar);
        cba_gs_last_items(g0 + v, g1 + v, g2 + v, gin + a, gout + a, r + v, z + v, z + vc,
                          n0, n1, n2, c1, c2, 1, start, stride);
    }
}
