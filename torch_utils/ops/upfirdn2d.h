// Upsample + pad + FIR filter + downsample: the per-pixel math, shared by the CUDA kernel
// (upfirdn2d.cu) and the plugin's host loop (upfirdn2d.cpp, used to check it on CPUs).
#pragma once
#include <cstdint>
#include <c10/core/ScalarType.h>
#include <cuda_runtime.h>

struct Upfirdn2dParams {
    const void* x;      // [planes, in_h, in_w], contiguous
    const float* f;     // [filter_h, filter_w], contiguous, float32
    void* y;            // [planes, out_h, out_w], contiguous
    int64_t planes;     // batch * channels
    int in_h, in_w, out_h, out_w;
    int filter_h, filter_w;
    int up_x, up_y, down_x, down_y;
    int pad_x0, pad_y0; // Leading padding (negative crops); the trailing one follows from out_h/out_w.
    bool flip_filter;   // false: true convolution (taps applied flipped); true: correlation.
    double gain;
};

// Tap t of the filter as applied by a correlation (flipped unless flip_filter).
__host__ __device__ inline float correlation_tap(const Upfirdn2dParams& p, int t) {
    return p.f[p.flip_filter ? t : p.filter_h * p.filter_w - 1 - t];
}

// First tap k >= 0 with (u0 + k) divisible by up, i.e. k = (-u0) mod up.
__host__ __device__ inline int first_tap(int u0, int up) {
    int k = (-u0) % up;
    return k < 0 ? k + up : k;
}

// Output pixel (oy, ox) of one plane. Tap (ky, kx) of the correlation reads the upsampled,
// padded image at (oy * down_y - pad_y0 + ky, ...), which holds an input pixel only where
// that position is a multiple of up: only those taps are visited.
template <class T, class A>
__host__ __device__ inline A upfirdn2d_pixel(const Upfirdn2dParams& p, const T* plane, const float* taps, int oy, int ox) {
    const int u0y = oy * p.down_y - p.pad_y0, u0x = ox * p.down_x - p.pad_x0;
    const int kx0 = first_tap(u0x, p.up_x), ix0 = (u0x + kx0) / p.up_x;
    int ky = first_tap(u0y, p.up_y), iy = (u0y + ky) / p.up_y;
    A acc = 0;
    for (; ky < p.filter_h; ky += p.up_y, iy++) {
        if (iy < 0 || iy >= p.in_h)
            continue;
        const T* row = plane + int64_t(iy) * p.in_w;
        const float* tap_row = taps + ky * p.filter_w;
        int ix = ix0;
        for (int kx = kx0; kx < p.filter_w; kx += p.up_x, ix++)
            if (ix >= 0 && ix < p.in_w)
                acc += static_cast<A>(row[ix]) * static_cast<A>(tap_row[kx]);
    }
    return acc * static_cast<A>(p.gain);
}

void upfirdn2d_cuda(const Upfirdn2dParams& p, c10::ScalarType dtype, cudaStream_t stream);
