// Rasterisation of grains into a uint8 label window, one thread per (grain, row).
// A row is a line of voxels along x at fixed (z, y). Each thread solves the grain's
// quadratic along its row for the span [lo, hi] of voxel centres inside the grain, corrects
// both ends by the exact point-in-grain test (so the result equals a brute-force float64
// test of every voxel centre), clips to the window and writes `value` into the span.
// All arithmetic uses GLOBAL voxel coordinates (integers converted exactly to double), so a
// voxel gets the same answer whichever window it is painted in.
// NumPy twin: cbagpu/simulate/raster.py. Compile with --fmad=false (see NVRTC_OPTIONS) so
// the float64 arithmetic rounds exactly like NumPy's.

// Oblate spheroid (closed): grain record cz cy cx uz uy ux 1/r^2 1/R^2 (global centre).
struct CbaSpheroid {
    static const int stride = 8;
    double cx, dz, dy, uz, uy, ux, ir2, iR2;
    __device__ CbaSpheroid(const double* q, const long long zi, const long long yi)
        : cx(q[2]), dz((double)zi - q[0]), dy((double)yi - q[1]), uz(q[3]), uy(q[4]),
          ux(q[5]), ir2(q[6]), iR2(q[7]) {}
    __device__ bool inside(const double x) const {
        const double dx = x - cx;
        const double du = dz * uz + dy * uy + dx * ux;
        const double d2 = dz * dz + dy * dy + dx * dx;
        return du * du * ir2 + (d2 - du * du) * iR2 <= 1.0;
    }
    __device__ void roots(double* t0, double* t1) const {
        const double a0 = dz * uz + dy * uy;
        const double b0 = dz * dz + dy * dy;
        const double p = ir2 - iR2;
        const double A = p * ux * ux + iR2;
        const double B = 2.0 * p * a0 * ux;
        const double C = p * a0 * a0 + iR2 * b0 - 1.0;
        const double disc = B * B - 4.0 * A * C;
        if (disc < 0.0) {
            *t0 = -B / (2.0 * A);
            *t1 = *t0;
        } else {
            const double sq = sqrt(disc);
            *t0 = (-B - sq) / (2.0 * A);
            *t1 = (-B + sq) / (2.0 * A);
        }
    }
};

// Open ball (Eq. 3): grain record cz cy cx R^2 (global centre).
struct CbaBall {
    static const int stride = 4;
    double cx, b0, R2;
    __device__ CbaBall(const double* q, const long long zi, const long long yi)
        : cx(q[2]), R2(q[3]) {
        const double dz = (double)zi - q[0];
        const double dy = (double)yi - q[1];
        b0 = dz * dz + dy * dy;
    }
    __device__ bool inside(const double x) const {
        const double dx = x - cx;
        return b0 + dx * dx < R2;
    }
    __device__ void roots(double* t0, double* t1) const {
        const double rem = R2 - b0;
        *t0 = 0.0;
        *t1 = 0.0;
        if (rem > 0.0) {
            const double sq = sqrt(rem);
            *t0 = -sq;
            *t1 = sq;
        }
    }
};

template <typename Grain>
__device__ void cba_paint_rows(unsigned char* __restrict__ labels, const int ny, const int nx,
                               const long long oz, const long long oy, const long long ox,
                               const double* __restrict__ grains,
                               const long long* __restrict__ rows,
                               const long long* __restrict__ row_offset, const int ngrains,
                               const long long nrows, const unsigned char value)
{
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < nrows;
         t += (long long)gridDim.x * blockDim.x) {
        // grain g: the largest g with row_offset[g] <= t (row_offset has ngrains + 1 entries)
        int g = 0, hi_g = ngrains - 1;
        while (g < hi_g) {
            const int mid = (g + hi_g + 1) >> 1;
            if (row_offset[mid] <= t) g = mid; else hi_g = mid - 1;
        }
        const long long r = t - row_offset[g];
        const long long nyr = rows[3 * g + 2];
        const long long zi = rows[3 * g] + r / nyr;
        const long long yi = rows[3 * g + 1] + r % nyr;
        const Grain grain(grains + (long long)Grain::stride * g, zi + oz, yi + oy);
        double t0, t1;
        grain.roots(&t0, &t1);
        long long lo = (long long)ceil(grain.cx + t0);
        long long hi = (long long)floor(grain.cx + t1);
        for (int k = 0; k < 2; ++k) {
            if (grain.inside((double)(lo - 1))) lo -= 1;
            else if (!grain.inside((double)lo)) lo += 1;
        }
        for (int k = 0; k < 2; ++k) {
            if (grain.inside((double)(hi + 1))) hi += 1;
            else if (!grain.inside((double)hi)) hi -= 1;
        }
        lo -= ox;  // to window-local x
        hi -= ox;
        if (lo < 0) lo = 0;
        if (hi > nx - 1) hi = nx - 1;
        unsigned char* line = labels + (zi * ny + yi) * (long long)nx;
        for (long long x = lo; x <= hi; ++x) line[x] = value;
    }
}

extern "C" __global__ void paint_spheroid_rows(
    unsigned char* __restrict__ labels, const int nz, const int ny, const int nx,
    const long long oz, const long long oy, const long long ox,  // window origin (global)
    const double* __restrict__ grains,   // 8 per grain: cz cy cx uz uy ux 1/r^2 1/R^2
    const long long* __restrict__ rows,  // 3 per grain: first z, first y, number of y rows
    const long long* __restrict__ row_offset, const int ngrains, const long long nrows,
    const unsigned char value)
{
    cba_paint_rows<CbaSpheroid>(labels, ny, nx, oz, oy, ox, grains, rows, row_offset, ngrains,
                                nrows, value);
}

extern "C" __global__ void paint_ball_rows(
    unsigned char* __restrict__ labels, const int nz, const int ny, const int nx,
    const long long oz, const long long oy, const long long ox,  // window origin (global)
    const double* __restrict__ grains,   // 4 per grain: cz cy cx R^2
    const long long* __restrict__ rows,  // 3 per grain: first z, first y, number of y rows
    const long long* __restrict__ row_offset, const int ngrains, const long long nrows,
    const unsigned char value)
{
    cba_paint_rows<CbaBall>(labels, ny, nx, oz, oy, ox, grains, rows, row_offset, ngrains,
                            nrows, value);
}
