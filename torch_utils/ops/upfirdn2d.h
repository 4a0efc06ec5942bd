// Upsample + pad + FIR filter + downsample: shared between upfirdn2d.cpp and upfirdn2d.cu.
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
    float gain;
};

void upfirdn2d_cuda(const Upfirdn2dParams& p, c10::ScalarType dtype, cudaStream_t stream);
