// Fused bias + activation + gain + clamp kernel (forward and first/second derivative).
#include <algorithm>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include "bias_act.h"

// f(v), f'(v) and f''(v) of one activation, in the math type A (float or double).
template <class A>
struct ActValues { A f, df, ddf; };

template <class A>
__device__ __forceinline__ ActValues<A> activation(int act, A v, A alpha) {
    const A one = 1, zero = 0;
    switch (act) {
    case kRelu:
        return {v > zero ? v : zero, v > zero ? one : zero, zero};
    case kLrelu:
        return {v > zero ? v : v * alpha, v > zero ? one : alpha, zero};
    case kTanh: {
        A t = tanh(v);
        return {t, one - t * t, A(-2) * t * (one - t * t)};
    }
    case kSigmoid: {
        A s = one / (one + exp(-v));
        return {s, s * (one - s), s * (one - s) * (one - A(2) * s)};
    }
    case kElu:  // alpha = 1, as torch.nn.functional.elu.
        return v > zero ? ActValues<A>{v, one, zero} : ActValues<A>{expm1(v), exp(v), exp(v)};
    case kSelu: {
        const A scale = A(1.0507009873554804934193349852946), sa = A(1.6732632423543772848170429916717) * scale;
        return v > zero ? ActValues<A>{scale * v, scale, zero} : ActValues<A>{sa * expm1(v), sa * exp(v), sa * exp(v)};
    }
    case kSoftplus: {  // torch's threshold: linear above 20.
        if (v > A(20))
            return {v, one, zero};
        A s = one / (one + exp(-v));
        return {log1p(exp(v)), s, s * (one - s)};
    }
    case kSwish: {
        A s = one / (one + exp(-v));
        return {v * s, s * (one + v * (one - s)), s * (one - s) * (A(2) + v * (one - A(2) * s))};
    }
    default:  // kLinear
        return {v, one, zero};
    }
}

template <class T>
__global__ void bias_act_kernel(BiasActParams p) {
    using A = at::opmath_type<T>;
    const T* x = static_cast<const T*>(p.x);
    const T* b = static_cast<const T*>(p.b);
    const T* dy = static_cast<const T*>(p.dy);
    T* out = static_cast<T*>(p.out);
    const A gain = p.gain, clamp = p.clamp, alpha = p.alpha;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.numel; i += int64_t(gridDim.x) * blockDim.x) {
        A v = static_cast<A>(x[i]);
        if (b)
            v += static_cast<A>(b[(i / p.bias_stride) % p.bias_size]);
        ActValues<A> a = activation<A>(p.act, v, alpha);
        A y = a.f * gain;
        if (p.mode == 0) {
            out[i] = static_cast<T>(clamp >= A(0) ? fmin(fmax(y, -clamp), clamp) : y);
            continue;
        }
        // Clamping passes the gradient only where the output was inside [-clamp, clamp].
        bool passes = clamp < A(0) || (y >= -clamp && y <= clamp);
        A slope = p.mode == 1 ? a.df : a.ddf;
        out[i] = static_cast<T>(passes ? static_cast<A>(dy[i]) * gain * slope : A(0));
    }
}

void bias_act_cuda(const BiasActParams& p, c10::ScalarType dtype, cudaStream_t stream) {
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((p.numel + threads - 1) / threads, int64_t(1) << 20);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, dtype, "bias_act_cuda", [&] {
        bias_act_kernel<scalar_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(p);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}
