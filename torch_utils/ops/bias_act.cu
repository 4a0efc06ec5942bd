// Fused bias + activation + gain + clamp kernel: one thread per element (grid-stride).
#include <algorithm>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include "bias_act.h"

// I is the index type: 32-bit when the tensor allows it, since 64-bit division is slow.
template <class T, class I>
__global__ void bias_act_kernel(BiasActParams p) {
    using A = at::opmath_type<T>;
    const T* x = static_cast<const T*>(p.x);
    const T* b = static_cast<const T*>(p.b);
    const T* dy = static_cast<const T*>(p.dy);
    T* out = static_cast<T*>(p.out);
    const I numel = static_cast<I>(p.numel), bias_stride = static_cast<I>(p.bias_stride), bias_size = static_cast<I>(p.bias_size);
    for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < numel; i += I(gridDim.x) * blockDim.x) {
        A v = static_cast<A>(x[i]);
        if (b)
            v += static_cast<A>(b[(i / bias_stride) % bias_size]);
        out[i] = static_cast<T>(bias_act_element<A>(p, v, dy ? static_cast<A>(dy[i]) : A(0)));
    }
}

void bias_act_cuda(const BiasActParams& p, c10::ScalarType dtype, cudaStream_t stream) {
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((p.numel + threads - 1) / threads, int64_t(1) << 16);
    const bool small = p.numel <= (int64_t(1) << 31) - 1 - int64_t(threads) * blocks;  // No overflow in i += stride.
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, dtype, "bias_act_cuda", [&] {
        if (small)
            bias_act_kernel<scalar_t, int32_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(p);
        else
            bias_act_kernel<scalar_t, int64_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(p);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}
