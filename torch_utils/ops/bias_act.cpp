// Python binding of the fused bias_act kernel. CUDA tensors run the kernel; CPU tensors run
// the same per-element math in a host loop, so the kernel math can be checked without a GPU
// (tests/test_custom_ops_build.py). The ops themselves use the plugin for CUDA tensors only.
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include "bias_act.h"

static void bias_act_host(const BiasActParams& p, c10::ScalarType dtype) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, dtype, "bias_act_host", [&] {
        using A = at::opmath_type<scalar_t>;
        const scalar_t* x = static_cast<const scalar_t*>(p.x);
        const scalar_t* b = static_cast<const scalar_t*>(p.b);
        const scalar_t* dy = static_cast<const scalar_t*>(p.dy);
        scalar_t* out = static_cast<scalar_t*>(p.out);
        for (int64_t i = 0; i < p.numel; i++) {
            A v = static_cast<A>(x[i]);
            if (b)
                v += static_cast<A>(b[(i / p.bias_stride) % p.bias_size]);
            out[i] = static_cast<scalar_t>(bias_act_element<A>(p, v, dy ? static_cast<A>(dy[i]) : A(0)));
        }
    });
}

static torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor dy, int64_t mode, int64_t dim,
                              int64_t act, double alpha, double gain, double clamp) {
    TORCH_CHECK(mode >= 0 && mode <= 2, "bias_act: mode must be 0, 1 or 2");
    TORCH_CHECK(act >= kLinear && act <= kSwish, "bias_act: unknown activation code ", act);
    // Any dense layout works (channels_last included): element i's bias index follows from
    // its memory offset and x.stride(dim). The output keeps the layout of x.
    if (!x.is_non_overlapping_and_dense())
        x = x.contiguous();
    if (b.numel() > 0) {
        TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim out of range");
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: b must be 1-D with x.size(dim) elements");
        TORCH_CHECK(b.device() == x.device() && b.scalar_type() == x.scalar_type(), "bias_act: b must match x in device and dtype");
        b = b.contiguous();
    }
    if (mode > 0) {
        TORCH_CHECK(dy.sizes() == x.sizes(), "bias_act: dy must have the shape of x");
        TORCH_CHECK(dy.device() == x.device() && dy.scalar_type() == x.scalar_type(), "bias_act: dy must match x in device and dtype");
        if (dy.strides() != x.strides())
            dy = torch::empty_like(x).copy_(dy);
    }
    auto out = torch::empty_like(x);
    if (x.numel() == 0)
        return out;

    BiasActParams p;
    p.x = x.data_ptr();
    p.b = b.numel() > 0 ? b.data_ptr() : nullptr;
    p.dy = mode > 0 ? dy.data_ptr() : nullptr;
    p.out = out.data_ptr();
    p.numel = x.numel();
    p.bias_stride = b.numel() > 0 ? x.stride(dim) : 1;
    p.bias_size = b.numel() > 0 ? x.size(dim) : 1;
    p.mode = static_cast<int>(mode);
    p.act = static_cast<int>(act);
    p.alpha = alpha;
    p.gain = gain;
    p.clamp = clamp;
    if (x.is_cuda()) {
        const c10::cuda::CUDAGuard guard(x.device());
        bias_act_cuda(p, x.scalar_type(), c10::cuda::getCurrentCUDAStream().stream());
    } else {
        bias_act_host(p, x.scalar_type());
    }
    return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bias_act", &bias_act, "Fused bias + activation + gain + clamp (CUDA; host loop for CPU tensors)");
}
