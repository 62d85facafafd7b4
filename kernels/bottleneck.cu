// Simulated intrusion (paper Section 3.3; NOTES §6): one directional sweep of the widest-path
// (bottleneck) label correction W(x) = max(W(x), min(F(x), W(y))) over face neighbours y.
// NumPy twin: cbagpu/measure/widest_path.py (sweep_twin); the driver there repeats rounds of
// the six sweeps until one raises nothing.
//
// F and W are (n0, n1, n2), C order, of the same unsigned type: F(x) = the number of grid
// balls that fit at x (0 outside the phase), W starts as F on the inlet layer and 0 elsewhere.
// The sweep along `axis` in direction `sign` (+1 / -1) scans every column along that axis
// once: W[k] = max(W[k], min(F[k], W[k - sign])). Each thread owns whole columns (no two
// threads touch the same voxel), so a sweep gives the same result in any order of the
// columns, which is the twin's result exactly. `changed` accumulates the raised voxels.

template <typename T>
__device__ __forceinline__ void cba_widest_sweep_t(
    const T* __restrict__ F, T* __restrict__ W, const int n0, const int n1, const int n2,
    const int axis, const int sign, unsigned long long* changed)
{
    const long long n[3] = {n0, n1, n2};
    const long long st[3] = {(long long)n1 * n2, (long long)n2, 1};
    const int b = axis == 0 ? 1 : 0;  // the plane's row axis
    const int c = axis == 2 ? 1 : 2;  // the plane's column axis (x where possible: coalesced)
    const long long sa = st[axis], na = n[axis], mc = n[c], ncol = n[b] * mc;
    const long long k0 = sign > 0 ? 1 : na - 2;
    unsigned long long count = 0;
    for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < ncol;
         q += (long long)gridDim.x * blockDim.x) {
        const long long base = (q / mc) * st[b] + (q % mc) * st[c];
        T prev = W[base + (k0 - sign) * sa];
        for (long long k = k0; k >= 0 && k < na; k += sign) {
            const long long p = base + k * sa;
            const T f = F[p];
            const T cand = prev < f ? prev : f;
            const T cur = W[p];
            if (cand > cur) {
                W[p] = cand;
                ++count;
                prev = cand;
            } else {
                prev = cur;
            }
        }
    }
    if (count) atomicAdd(changed, count);
}

extern "C" __global__ void cba_widest_sweep_u8(
    const unsigned char* __restrict__ F, unsigned char* __restrict__ W, const int n0,
    const int n1, const int n2, const int axis, const int sign, unsigned long long* changed)
{
    cba_widest_sweep_t<unsigned char>(F, W, n0, n1, n2, axis, sign, changed);
}

extern "C" __global__ void cba_widest_sweep_u16(
    const unsigned short* __restrict__ F, unsigned short* __restrict__ W, const int n0,
    const int n1, const int n2, const int axis, const int sign, unsigned long long* changed)
{
    cba_widest_sweep_t<unsigned short>(F, W, n0, n1, n2, axis, sign, changed);
}
