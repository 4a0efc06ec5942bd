// Fused bias + activation + gain + clamp: the per-element math, shared by the CUDA kernel
// (bias_act.cu) and the plugin's host loop (bias_act.cpp, used to check this math on CPUs).
#pragma once
#include <cmath>
#include <cstdint>
#include <c10/core/ScalarType.h>
#include <cuda_runtime.h>

// Activation codes; they match activation_funcs[...].cuda_idx in bias_act.py.
enum BiasActKind { kLinear = 1, kRelu, kLrelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kSwish };

// mode 0: out = clamp(gain * f(x + b))
// mode 1: out = dy * gain * f'(x + b) * [|gain * f(x + b)| <= clamp]
// mode 2: out = dy * gain * f''(x + b) * [|gain * f(x + b)| <= clamp]
struct BiasActParams {
    const void* x;       // Dense (any dimension order); dy and out share its strides.
    const void* b;       // nullptr: no bias.
    const void* dy;      // Used by modes 1 and 2.
    void* out;
    int64_t numel;
    int64_t bias_stride; // Bias index of the element at memory offset i = (i / bias_stride) % bias_size.
    int64_t bias_size;
    int mode;
    int act;
    double alpha;
    double gain;
    double clamp;        // < 0: no clamping.
};

// f(v), f'(v) and f''(v) of one activation, in the math type A (float or double).
template <class A>
struct ActValues { A f, df, ddf; };

template <class A>
__host__ __device__ inline ActValues<A> activation(int act, A v, A alpha) {
    const A one = 1, zero = 0;
    switch (act) {
    case kRelu:
        return {v > zero ? v : zero, v > zero ? one : zero, zero};
    case kLrelu:
        return {v > zero ? v : v * alpha, v > zero ? one : alpha, zero};
    case kTanh: {
        A t = std::tanh(v);
        return {t, one - t * t, A(-2) * t * (one - t * t)};
    }
    case kSigmoid: {
        A s = one / (one + std::exp(-v));
        return {s, s * (one - s), s * (one - s) * (one - A(2) * s)};
    }
    // elu/selu at exactly 0: f' from the exponential side, f'' = 0, as torch's autograd.
    case kElu:  // alpha = 1, as torch.nn.functional.elu.
        return v > zero ? ActValues<A>{v, one, zero} : ActValues<A>{std::expm1(v), std::exp(v), v < zero ? std::exp(v) : zero};
    case kSelu: {
        const A scale = A(1.0507009873554804934193349852946), sa = A(1.6732632423543772848170429916717) * scale;
        return v > zero ? ActValues<A>{scale * v, scale, zero} : ActValues<A>{sa * std::expm1(v), sa * std::exp(v), v < zero ? sa * std::exp(v) : zero};
    }
    case kSoftplus: {  // torch's threshold: linear above 20.
        if (v > A(20))
            return {v, one, zero};
        A s = one / (one + std::exp(-v));
        return {std::log1p(std::exp(v)), s, s * (one - s)};
    }
    case kSwish: {
        A s = one / (one + std::exp(-v));
        return {v * s, s * (one + v * (one - s)), s * (one - s) * (A(2) + v * (one - A(2) * s))};
    }
    default:  // kLinear
        return {v, one, zero};
    }
}

// The output of one element, given v = x + b (and dy for modes 1 and 2).
template <class A>
__host__ __device__ inline A bias_act_element(const BiasActParams& p, A v, A dy) {
    const A gain = p.gain, clamp = p.clamp;
    const ActValues<A> a = activation<A>(p.act, v, A(p.alpha));
    const A y = a.f * gain;
    const bool clamped = clamp >= A(0);
    if (p.mode == 0)
        return clamped ? (y < -clamp ? -clamp : (y > clamp ? clamp : y)) : y;
    // Clamping passes the gradient only where the output was inside [-clamp, clamp].
    if (clamped && (y < -clamp || y > clamp))
        return A(0);
    return dy * gain * (p.mode == 1 ? a.df : a.ddf);
}

void bias_act_cuda(const BiasActParams& p, c10::ScalarType dtype, cudaStream_t stream);
