// Compile cbagpu's CUDA kernels as plain host C++ (tests only): one "thread" whose
// grid-stride loops visit every work item in turn. This checks each kernel's logic, indexing
// and argument order against its NumPy twin on machines without a GPU. -ffp-contract=off
// matches the kernels' --fmad=false.
#pragma once
#include <math.h>
struct cba_dim3 { unsigned int x, y, z; };
static const cba_dim3 blockIdx = {0, 0, 0};
static const cba_dim3 threadIdx = {0, 0, 0};
static const cba_dim3 blockDim = {1, 1, 1};
static const cba_dim3 gridDim = {1, 1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
// One host "thread" per block: the barrier has nothing to wait for.
static inline void __syncthreads() {}
// Block-shared memory of a one-thread block: a local array.
#define __shared__
// One host thread: nothing to fence.
static inline void __threadfence() {}
static inline unsigned int atomicAdd(unsigned int* address, unsigned int v)
{
    const unsigned int old = *address;
    *address = old + v;
    return old;
}
static inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long v)
{
    const unsigned long long old = *address;
    *address = old + v;
    return old;
}
