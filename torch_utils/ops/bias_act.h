// Fused bias + activation + gain + clamp: shared between bias_act.cpp and bias_act.cu.
#pragma once
#include <cstdint>
#include <c10/core/ScalarType.h>
#include <cuda_runtime.h>

// Activation codes; they match activation_funcs[...].cuda_idx in bias_act.py.
enum BiasActKind { kLinear = 1, kRelu, kLrelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kSwish };

// mode 0: out = clamp(gain * f(x + b))
// mode 1: out = dy * gain * f'(x + b) * [|gain * f(x + b)| <= clamp]
// mode 2: out = dy * gain * f''(x + b) * [|gain * f(x + b)| <= clamp]
struct BiasActParams {
    const void* x;
    const void* b;       // nullptr: no bias.
    const void* dy;      // Used by modes 1 and 2.
    void* out;
    int64_t numel;
    int64_t bias_stride; // Bias index of element i = (i / bias_stride) % bias_size.
    int64_t bias_size;
    int mode;
    int act;
    float alpha;
    float gain;
    float clamp;         // < 0: no clamping.
};

void bias_act_cuda(const BiasActParams& p, c10::ScalarType dtype, cudaStream_t stream);
