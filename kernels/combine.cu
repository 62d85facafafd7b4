// Phase combination, step 1 of Eq. (4): the excursion set {Z >= mu} of one block of the
// Gaussian field (its valid part) is written into the label window as CBD (1) / pore (0).
// Large pores (Xi3, painted 0) and graphite (Xi1, painted 2) are painted on top afterwards by
// raster.cu, which yields labels = Xi1 -> 2, Xi2 \ Xi3 \ Xi1 -> 1, rest -> 0.
// NumPy twin: cbagpu/simulate/realization.py (_threshold_numpy).

extern "C" __global__ void threshold_into_labels(
    const float* __restrict__ field, const int fny, const int fnx,  // field block (C order)
    const int fz, const int fy, const int fx,                       // copy start in field
    unsigned char* __restrict__ labels, const int ny, const int nx,  // label window
    const int lz, const int ly, const int lx,                       // copy start in labels
    const int cz, const int cy, const int cx,                       // copy extent
    const float mu)
{
    const long long n = (long long)cz * cy * cx;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const long long ix = i % cx;
        const long long t = i / cx;
        const long long iy = t % cy;
        const long long iz = t / cy;
        const float z = field[((fz + iz) * fny + (fy + iy)) * (long long)fnx + (fx + ix)];
        labels[((lz + iz) * ny + (ly + iy)) * (long long)nx + (lx + ix)] =
            (z >= mu) ? (unsigned char)1 : (unsigned char)0;
    }
}
