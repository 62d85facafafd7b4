// Geodesic tortuosity (paper Section 3.3; NOTES §6): directional plane sweeps of the label
// correction d(v) = min(d(v), d(u) + |u - v|) over the 26-connected voxel graph of a phase.
// NumPy twin: cbagpu/measure/geodesic.py (_sweep_twin); the driver that repeats rounds of the
// six sweeps until one changes nothing is _geodesic_padded_rounds there.
//
// d is the padded distance array (n0, n1, n2), C order: NaN on obstacles and on the one-voxel
// border, so every interior voxel has all 26 neighbours and NaN neighbours are ignored. A
// sweep along `axis` in direction `sign` (+1 / -1) visits the interior planes k along that
// axis in order and relaxes every voxel of plane k from its 9 neighbours in plane k - sign
// (steps of length 1, sqrt 2, sqrt 3). One launch relaxes `count` consecutive planes of the
// sweep, starting at plane `first`; `changed` accumulates the number of lowered voxels.
//
// Each thread owns one column (one voxel position in the plane) and walks it through the
// launch's planes; the threads of a block stay in step (__syncthreads per plane). With one
// plane per launch the launch boundary orders the planes for the whole grid and a sweep gives
// exactly the twin's result. With several planes per launch, a thread may read a neighbour of
// another block before or after that block lowered it: every value ever stored is the length
// of a real path (an upper bound of the distance), so a stale read only delays an improvement
// to a later sweep. Either way the fixed point, reached when a whole round of six sweeps
// lowers nothing, is the same exact graph distance.
//
// Work items: the interior columns, rounded up to whole blocks so that every thread of a block
// runs the same number of plane steps (the __syncthreads of the loop is reached by all).

template <typename T>
__device__ __forceinline__ T cba_nanmin(const T a, const T b)
{
    return (b < a || a != a) ? b : a;  // like fmin: a NaN argument is ignored
}

template <typename T>
__device__ __forceinline__ void cba_geodesic_sweep_t(
    T* d, const int n0, const int n1, const int n2, const int axis, const int sign,
    const int first, const int count_planes, unsigned long long* changed)
{
    const long long n[3] = {n0, n1, n2};
    const long long st[3] = {(long long)n1 * n2, (long long)n2, 1};
    const int b = axis == 0 ? 1 : 0;  // the plane's row axis
    const int c = axis == 2 ? 1 : 2;  // the plane's column axis (x where possible: coalesced)
    const long long sa = st[axis], sb = st[b], sc = st[c], na = n[axis];
    const long long mc = n[c] - 2, ncol = (n[b] - 2) * mc;
    const long long width = (long long)blockDim.x;
    const long long span = ((ncol + width - 1) / width) * width;
    const T s2 = (T)1.4142135623730951, s3 = (T)1.7320508075688772, one = (T)1;
    unsigned long long count = 0;
    for (long long q = (long long)blockIdx.x * width + threadIdx.x; q < span;
         q += (long long)gridDim.x * width) {
        const bool mine = q < ncol;
        const long long base = mine ? (q / mc + 1) * sb + (q % mc + 1) * sc : 0;
        for (int s = 0; s < count_planes; ++s) {
            const long long k = (long long)first + (long long)s * sign;
            if (mine && k >= 1 && k <= na - 2) {
                T* t = d + k * sa + base;
                const T cur = *t;
                if (cur == cur) {  // NaN: obstacle, never changes
                    const T* p = t - sign * sa;  // the same column in the previous plane
                    const T e = cba_nanmin(cba_nanmin(p[-sb], p[sb]),
                                           cba_nanmin(p[-sc], p[sc])) + s2;
                    const T g = cba_nanmin(cba_nanmin(p[-sb - sc], p[-sb + sc]),
                                           cba_nanmin(p[sb - sc], p[sb + sc])) + s3;
                    const T best = cba_nanmin(cba_nanmin(e, g), p[0] + one);
                    if (best < cur) {
                        *t = best;
                        ++count;
                    }
                }
            }
            __syncthreads();
        }
    }
    if (count) atomicAdd(changed, count);
}

extern "C" __global__ void cba_geodesic_sweep_f32(
    float* d, const int n0, const int n1, const int n2, const int axis, const int sign,
    const int first, const int count_planes, unsigned long long* changed)
{
    cba_geodesic_sweep_t<float>(d, n0, n1, n2, axis, sign, first, count_planes, changed);
}

extern "C" __global__ void cba_geodesic_sweep_f64(
    double* d, const int n0, const int n1, const int n2, const int axis, const int sign,
    const int first, const int count_planes, unsigned long long* changed)
{
    cba_geodesic_sweep_t<double>(d, n0, n1, n2, axis, sign, first, count_planes, changed);
}

// ======================================================================================
// The whole sweep in one launch (the GPU route's default): a persistent kernel whose blocks
// all stay resident (the launch asks for at most one block per multiprocessor) and meet at a
// grid-wide barrier after every plane, so the planes are relaxed in order for the whole grid
// exactly as by one launch per plane (and by the twin, _sweep_twin): the same distances and
// counts after every sweep, in one launch instead of one per plane. Reads of the previous
// plane bypass the non-coherent L1 cache (__ldcg). `bar` holds two unsigned counters, zero
// before the first launch (the barrier leaves them reusable).
#include "cba_grid_sync.h"

template <typename T>
__device__ __forceinline__ void cba_geodesic_sweep_all_t(
    T* d, const int n0, const int n1, const int n2, const int axis, const int sign,
    unsigned long long* changed, unsigned int* bar)
{
    const long long n[3] = {n0, n1, n2};
    const long long st[3] = {(long long)n1 * n2, (long long)n2, 1};
    const int b = axis == 0 ? 1 : 0;
    const int c = axis == 2 ? 1 : 2;
    const long long sa = st[axis], sb = st[b], sc = st[c], na = n[axis];
    const long long mc = n[c] - 2, ncol = (n[b] - 2) * mc;
    const long long planes = na - 3, k0 = sign > 0 ? 2 : na - 3;
    const T s2 = (T)1.4142135623730951, s3 = (T)1.7320508075688772, one = (T)1;
    unsigned long long count = 0;
    for (long long s = 0; s < planes; ++s) {
        const long long k = k0 + s * sign;
        for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < ncol;
             q += (long long)gridDim.x * blockDim.x) {
            T* t = d + k * sa + (q / mc + 1) * sb + (q % mc + 1) * sc;
            const T cur = *t;
            if (cur == cur) {
                const T* p = t - sign * sa;
                const T e = cba_nanmin(cba_nanmin(CBA_LOAD_CG(p - sb), CBA_LOAD_CG(p + sb)),
                                       cba_nanmin(CBA_LOAD_CG(p - sc), CBA_LOAD_CG(p + sc))) + s2;
                const T g = cba_nanmin(
                    cba_nanmin(CBA_LOAD_CG(p - sb - sc), CBA_LOAD_CG(p - sb + sc)),
                    cba_nanmin(CBA_LOAD_CG(p + sb - sc), CBA_LOAD_CG(p + sb + sc))) + s3;
                const T best = cba_nanmin(cba_nanmin(e, g), CBA_LOAD_CG(p) + one);
                if (best < cur) {
                    *t = best;
                    ++count;
                }
            }
        }
        cba_grid_sync(bar);
    }
    if (count) atomicAdd(changed, count);
}

extern "C" __global__ void cba_geodesic_sweep_all_f32(
    float* d, const int n0, const int n1, const int n2, const int axis, const int sign,
    unsigned long long* changed, unsigned int* bar)
{
    cba_geodesic_sweep_all_t<float>(d, n0, n1, n2, axis, sign, changed, bar);
}

extern "C" __global__ void cba_geodesic_sweep_all_f64(
    double* d, const int n0, const int n1, const int n2, const int axis, const int sign,
    unsigned long long* changed, unsigned int* bar)
{
    cba_geodesic_sweep_all_t<double>(d, n0, n1, n2, axis, sign, changed, bar);
}
