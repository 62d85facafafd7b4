// Rasterisation of grains into a uint8 label window, one thread per (grain, row).
// A row is a line of voxels along x at fixed (z, y). Each thread solves the grain's
// quadratic along its row for the span [lo, hi] of voxel centres inside the grain, corrects
// both ends by the exact point-in-grain test (so the result equals a brute-force float64
// test of every voxel centre), clips to the window and writes `value` into the span.
// NumPy twin: cbagpu/simulate/raster.py. Compile with --fmad=false (see NVRTC_OPTIONS) so
// the float64 arithmetic rounds exactly like NumPy's.

__device__ __forceinline__ long long cba_find_grain(const long long* __restrict__ row_offset,
                                                    const int ngrains, const long long t)
{
    // largest g with row_offset[g] <= t (row_offset has ngrains + 1 entries)
    int lo = 0, hi = ngrains - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (row_offset[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
}

__device__ __forceinline__ bool cba_in_spheroid(const double x, const double dz, const double dy,
                                                const double cx, const double uz,
                                                const double uy, const double ux,
                                                const double ir2, const double iR2)
{
    const double dx = x - cx;
    const double du = dz * uz + dy * uy + dx * ux;
    const double d2 = dz * dz + dy * dy + dx * dx;
    const double f = du * du * ir2 + (d2 - du * du) * iR2;
    return f <= 1.0;
}

extern "C" __global__ void paint_spheroid_rows(
    unsigned char* __restrict__ labels, const int nz, const int ny, const int nx,
    const double* __restrict__ grains,   // 8 per grain: cz cy cx uz uy ux 1/r^2 1/R^2
    const long long* __restrict__ rows,  // 3 per grain: first z, first y, number of y rows
    const long long* __restrict__ row_offset, const int ngrains, const long long nrows,
    const unsigned char value)
{
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < nrows;
         t += (long long)gridDim.x * blockDim.x) {
        const long long g = cba_find_grain(row_offset, ngrains, t);
        const long long r = t - row_offset[g];
        const long long nyr = rows[3 * g + 2];
        const long long zi = rows[3 * g] + r / nyr;
        const long long yi = rows[3 * g + 1] + r % nyr;
        const double* q = grains + 8 * g;
        const double cz = q[0], cy = q[1], cx = q[2], uz = q[3], uy = q[4], ux = q[5];
        const double ir2 = q[6], iR2 = q[7];
        const double dz = (double)zi - cz;
        const double dy = (double)yi - cy;
        const double a0 = dz * uz + dy * uy;
        const double b0 = dz * dz + dy * dy;
        const double p = ir2 - iR2;
        const double A = p * ux * ux + iR2;
        const double B = 2.0 * p * a0 * ux;
        const double C = p * a0 * a0 + iR2 * b0 - 1.0;
        const double disc = B * B - 4.0 * A * C;
        double t0, t1;
        if (disc < 0.0) {
            t0 = -B / (2.0 * A);
            t1 = t0;
        } else {
            const double sq = sqrt(disc);
            t0 = (-B - sq) / (2.0 * A);
            t1 = (-B + sq) / (2.0 * A);
        }
        long long lo = (long long)ceil(cx + t0);
        long long hi = (long long)floor(cx + t1);
        for (int k = 0; k < 2; ++k) {
            if (cba_in_spheroid((double)(lo - 1), dz, dy, cx, uz, uy, ux, ir2, iR2)) lo -= 1;
            else if (!cba_in_spheroid((double)lo, dz, dy, cx, uz, uy, ux, ir2, iR2)) lo += 1;
        }
        for (int k = 0; k < 2; ++k) {
            if (cba_in_spheroid((double)(hi + 1), dz, dy, cx, uz, uy, ux, ir2, iR2)) hi += 1;
            else if (!cba_in_spheroid((double)hi, dz, dy, cx, uz, uy, ux, ir2, iR2)) hi -= 1;
        }
        if (lo < 0) lo = 0;
        if (hi > nx - 1) hi = nx - 1;
        unsigned char* line = labels + (zi * ny + yi) * (long long)nx;
        for (long long x = lo; x <= hi; ++x) line[x] = value;
    }
}

__device__ __forceinline__ bool cba_in_ball(const double x, const double b0, const double cx,
                                            const double R2)
{
    const double dx = x - cx;
    return b0 + dx * dx < R2;  // open ball
}

extern "C" __global__ void paint_ball_rows(
    unsigned char* __restrict__ labels, const int nz, const int ny, const int nx,
    const double* __restrict__ grains,   // 4 per grain: cz cy cx R^2
    const long long* __restrict__ rows,  // 3 per grain: first z, first y, number of y rows
    const long long* __restrict__ row_offset, const int ngrains, const long long nrows,
    const unsigned char value)
{
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < nrows;
         t += (long long)gridDim.x * blockDim.x) {
        const long long g = cba_find_grain(row_offset, ngrains, t);
        const long long r = t - row_offset[g];
        const long long nyr = rows[3 * g + 2];
        const long long zi = rows[3 * g] + r / nyr;
        const long long yi = rows[3 * g + 1] + r % nyr;
        const double* q = grains + 4 * g;
        const double cz = q[0], cy = q[1], cx = q[2], R2 = q[3];
        const double dz = (double)zi - cz;
        const double dy = (double)yi - cy;
        const double b0 = dz * dz + dy * dy;
        const double rem = R2 - b0;
        double t0 = 0.0, t1 = 0.0;
        if (rem > 0.0) {
            const double sq = sqrt(rem);
            t0 = -sq;
            t1 = sq;
        }
        long long lo = (long long)ceil(cx + t0);
        long long hi = (long long)floor(cx + t1);
        for (int k = 0; k < 2; ++k) {
            if (cba_in_ball((double)(lo - 1), b0, cx, R2)) lo -= 1;
            else if (!cba_in_ball((double)lo, b0, cx, R2)) lo += 1;
        }
        for (int k = 0; k < 2; ++k) {
            if (cba_in_ball((double)(hi + 1), b0, cx, R2)) hi += 1;
            else if (!cba_in_ball((double)hi, b0, cx, R2)) hi -= 1;
        }
        if (lo < 0) lo = 0;
        if (hi > nx - 1) hi = nx - 1;
        unsigned char* line = labels + (zi * ny + yi) * (long long)nx;
        for (long long x = lo; x <= hi; ++x) line[x] = value;
    }
}
