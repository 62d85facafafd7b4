// Counter-based white noise: N(0,1) float32 as a pure function of (key, global voxel index).
// NumPy twin: cbagpu/simulate/noise.py (white_noise_numpy). Both must evaluate the same hash
// chain; see that module for the definition and the constants.

__device__ __forceinline__ unsigned int cba_mix32(unsigned int x)
{
    // "lowbias32" integer finaliser (bijective on 32-bit words).
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

extern "C" __global__ void white_noise(float* __restrict__ out, const unsigned int key,
                                       const long long z0, const long long y0,
                                       const long long x0, const int nz, const int ny,
                                       const int nx)
{
    const long long n = (long long)nz * ny * nx;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const long long ix = i % nx;
        const long long t = i / nx;
        const long long iy = t % ny;
        const long long iz = t / ny;
        const long long x = x0 + ix;
        const long long y = y0 + iy;
        const long long z = z0 + iz;
        const unsigned int hz = cba_mix32(((unsigned int)z * 0x9E3779B1u) ^ key);
        const unsigned int hzy = cba_mix32(hz + (unsigned int)y * 0x85EBCA77u);
        const long long p = x >> 1;  // pair index, floor division (arithmetic shift)
        const unsigned int h1 = cba_mix32(hzy ^ ((unsigned int)p * 0xC2B2AE3Du));
        const unsigned int h2 = cba_mix32(h1 + 0x27D4EB2Fu);
        // Box-Muller on 24-bit uniforms; u1 in (0, 1), u2 in [0, 1).
        const float u1 = ((float)(h1 >> 8) + 0.5f) * 5.9604644775390625e-08f;
        const float u2 = (float)(h2 >> 8) * 5.9604644775390625e-08f;
        const float r = sqrtf(-2.0f * logf(u1));
        const float a = 6.2831855f * u2;
        out[i] = (x & 1) ? r * sinf(a) : r * cosf(a);
    }
}
