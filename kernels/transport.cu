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
    const float* __restrict__ gin, const float* __restrict__ gout, const T* __restrict__ z,
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

// Half a red-black Gauss-Seidel sweep in place: voxels with (i + j + k) % 2 == color and a
// non-zero diagonal get (r + s) / D.  They only read voxels of the other colour.
extern "C" __global__ void cba_gauss_seidel(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ r,
    float* z, const int n0, const int n1, const int n2, const int color)
{
    const long long n = (long long)n0 * n1 * n2;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < n;
         p += (long long)gridDim.x * blockDim.x) {
        const long long k = p % n2, t = p / n2, j = t % n1, i = t / n1;
        if (((i + j + k) & 1) != color) continue;
        double s, d;
        cba_point<float>(g0, g1, g2, gin, gout, z, i, j, k, n0, n1, n2, &s, &d);
        if (d > 0.0) z[p] = (float)(((double)r[p] + s) / d);
    }
}

// rc = R (r - A z): residuals summed over 2x2x2 blocks
extern "C" __global__ void cba_residual_restrict(
    const float* __restrict__ g0, const float* __restrict__ g1, const float* __restrict__ g2,
    const float* __restrict__ gin, const float* __restrict__ gout, const float* __restrict__ r,
    const float* __restrict__ z, float* __restrict__ rc, const int n0, const int n1,
    const int n2, const int c0, const int c1, const int c2)
{
    const long long n = (long long)c0 * c1 * c2;
    for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < n;
         q += (long long)gridDim.x * blockDim.x) {
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
