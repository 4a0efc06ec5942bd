// Python binding of the fused bias_act kernel: argument checks, then the launch.
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include "bias_act.h"

static torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor dy, int64_t mode, int64_t dim,
                              int64_t act, double alpha, double gain, double clamp) {
    TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor");
    TORCH_CHECK(mode >= 0 && mode <= 2, "bias_act: mode must be 0, 1 or 2");
    TORCH_CHECK(act >= kLinear && act <= kSwish, "bias_act: unknown activation code ", act);
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim out of range");
    const c10::cuda::CUDAGuard guard(x.device());
    x = x.contiguous();
    if (b.numel() > 0) {
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: b must be 1-D with x.size(dim) elements");
        TORCH_CHECK(b.device() == x.device() && b.scalar_type() == x.scalar_type(), "bias_act: b must match x in device and dtype");
        b = b.contiguous();
    }
    if (mode > 0) {
        TORCH_CHECK(dy.sizes() == x.sizes(), "bias_act: dy must have the shape of x");
        TORCH_CHECK(dy.device() == x.device() && dy.scalar_type() == x.scalar_type(), "bias_act: dy must match x in device and dtype");
        dy = dy.contiguous();
    }
    auto out = torch::empty_like(x, at::MemoryFormat::Contiguous);
    if (x.numel() == 0)
        return out;

    BiasActParams p;
    p.x = x.data_ptr();
    p.b = b.numel() > 0 ? b.data_ptr() : nullptr;
    p.dy = mode > 0 ? dy.data_ptr() : nullptr;
    p.out = out.data_ptr();
    p.numel = x.numel();
    p.bias_stride = x.stride(dim);
    p.bias_size = x.size(dim);
    p.mode = static_cast<int>(mode);
    p.act = static_cast<int>(act);
    p.alpha = static_cast<float>(alpha);
    p.gain = static_cast<float>(gain);
    p.clamp = static_cast<float>(clamp);
    bias_act_cuda(p, x.scalar_type(), c10::cuda::getCurrentCUDAStream().stream());
    return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bias_act", &bias_act, "Fused bias + activation + gain + clamp (CUDA)");
}
