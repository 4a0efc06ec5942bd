// Python binding of the upfirdn2d kernel. CUDA tensors run the kernel; CPU tensors run the
// same per-pixel math in a host loop, so the kernel math can be checked without a GPU
// (tests/test_custom_ops_build.py). The ops themselves use the plugin for CUDA tensors only.
#include <vector>
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include "upfirdn2d.h"

static void upfirdn2d_host(const Upfirdn2dParams& p, c10::ScalarType dtype) {
    std::vector<float> taps(p.filter_h * p.filter_w);
    for (int t = 0; t < static_cast<int>(taps.size()); t++)
        taps[t] = correlation_tap(p, t);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, dtype, "upfirdn2d_host", [&] {
        using A = at::opmath_type<scalar_t>;
        const scalar_t* x = static_cast<const scalar_t*>(p.x);
        scalar_t* y = static_cast<scalar_t*>(p.y);
        for (int64_t plane = 0; plane < p.planes; plane++)
            for (int oy = 0; oy < p.out_h; oy++)
                for (int ox = 0; ox < p.out_w; ox++)
                    y[(plane * p.out_h + oy) * p.out_w + ox] = static_cast<scalar_t>(
                        upfirdn2d_pixel<scalar_t, A>(p, x + plane * p.in_h * p.in_w, taps.data(), oy, ox));
    });
}

static torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor f, int64_t up_x, int64_t up_y, int64_t down_x,
                               int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1,
                               bool flip_filter, double gain) {
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be a 4-D tensor");
    TORCH_CHECK(f.dim() == 2 && f.scalar_type() == torch::kFloat && f.device() == x.device(),
                "upfirdn2d: f must be a 2-D float32 tensor on the device of x");
    TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "upfirdn2d: up/down must be >= 1");
    x = x.contiguous();
    f = f.contiguous();
    const int64_t out_h = (x.size(2) * up_y + pad_y0 + pad_y1 - f.size(0)) / down_y + 1;
    const int64_t out_w = (x.size(3) * up_x + pad_x0 + pad_x1 - f.size(1)) / down_x + 1;
    TORCH_CHECK(out_h >= 1 && out_w >= 1, "upfirdn2d: the output would be empty");
    auto y = torch::empty({x.size(0), x.size(1), out_h, out_w}, x.options());
    if (y.numel() == 0)
        return y;

    Upfirdn2dParams p;
    p.x = x.data_ptr();
    p.f = f.data_ptr<float>();
    p.y = y.data_ptr();
    p.planes = x.size(0) * x.size(1);
    p.in_h = static_cast<int>(x.size(2));
    p.in_w = static_cast<int>(x.size(3));
    p.out_h = static_cast<int>(out_h);
    p.out_w = static_cast<int>(out_w);
    p.filter_h = static_cast<int>(f.size(0));
    p.filter_w = static_cast<int>(f.size(1));
    p.up_x = static_cast<int>(up_x);
    p.up_y = static_cast<int>(up_y);
    p.down_x = static_cast<int>(down_x);
    p.down_y = static_cast<int>(down_y);
    p.pad_x0 = static_cast<int>(pad_x0);
    p.pad_y0 = static_cast<int>(pad_y0);
    p.flip_filter = flip_filter;
    p.gain = gain;
    if (x.is_cuda()) {
        const c10::cuda::CUDAGuard guard(x.device());
        upfirdn2d_cuda(p, x.scalar_type(), c10::cuda::getCurrentCUDAStream().stream());
    } else {
        upfirdn2d_host(p, x.scalar_type());
    }
    return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("upfirdn2d", &upfirdn2d, "Upsample, pad, FIR filter, downsample (CUDA; host loop for CPU tensors)");
}
