// The grid-wide barrier of cbagpu's persistent kernels (geodesic.cu, transport.cu), and
// loads that bypass the non-coherent L1 cache. A persistent kernel's blocks must all be
// resident: launch at most Backend.resident_blocks(threads) blocks (one per multiprocessor).
// `bar` holds two unsigned counters, zero before the first launch (the barrier leaves them
// reusable). The same pattern as cooperative groups' grid sync: a block barrier, one thread
// per block arrives at a counter and waits for the generation to change, fences on both
// sides, a block barrier. On the host (cuda_host_shim.h: one thread walks every work item in
// order) the barrier has nothing to wait for.
// Included by the kernels that use it (cbagpu.backend.kernels.kernel_source inlines it).
#ifndef CBA_GRID_SYNC_H
#define CBA_GRID_SYNC_H
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define CBA_LOAD_CG(ptr) __ldcg(ptr)
__device__ __forceinline__ void cba_grid_sync(unsigned int* bar)
{
    __syncthreads();
    if (threadIdx.x == 0) {
        volatile unsigned int* vb = bar;
        const unsigned int gen = vb[1];
        __threadfence();
        if (atomicAdd(&bar[0], 1u) == gridDim.x - 1) {
            atomicExch(&bar[0], 0u);
            __threadfence();
            atomicAdd(&bar[1], 1u);
        } else {
            while (vb[1] == gen) {
            }
        }
        __threadfence();
    }
    __syncthreads();
}
#else
#define CBA_LOAD_CG(ptr) (*(ptr))
static inline void cba_grid_sync(unsigned int*) {}  // one host thread: planes are in order
#endif
#endif  // CBA_GRID_SYNC_H
