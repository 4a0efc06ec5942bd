// upfirdn2d kernel: a 2-D grid of threads over the output pixels of a plane, the third grid
// dimension over planes; the filter sits in shared memory.
#include <algorithm>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include "upfirdn2d.h"

constexpr int kBlockW = 32, kBlockH = 8;

template <class T>
__global__ void upfirdn2d_kernel(Upfirdn2dParams p) {
    using A = at::opmath_type<T>;
    extern __shared__ float taps[];
    const int num_taps = p.filter_h * p.filter_w;
    for (int t = threadIdx.y * kBlockW + threadIdx.x; t < num_taps; t += kBlockW * kBlockH)
        taps[t] = correlation_tap(p, t);
    __syncthreads();

    const int ox = blockIdx.x * kBlockW + threadIdx.x, oy = blockIdx.y * kBlockH + threadIdx.y;
    if (ox >= p.out_w || oy >= p.out_h)
        return;
    const T* x = static_cast<const T*>(p.x);
    T* y = static_cast<T*>(p.y);
    for (int64_t plane = blockIdx.z; plane < p.planes; plane += gridDim.z) {
        const T* in = x + plane * p.in_h * p.in_w;
        y[(plane * p.out_h + oy) * p.out_w + ox] = static_cast<T>(upfirdn2d_pixel<T, A>(p, in, taps, oy, ox));
    }
}

void upfirdn2d_cuda(const Upfirdn2dParams& p, c10::ScalarType dtype, cudaStream_t stream) {
    const dim3 block(kBlockW, kBlockH);
    const dim3 grid((p.out_w + kBlockW - 1) / kBlockW, (p.out_h + kBlockH - 1) / kBlockH,
                    static_cast<unsigned>(std::min<int64_t>(p.planes, 65535)));
    const size_t shared_bytes = sizeof(float) * p.filter_h * p.filter_w;
    TORCH_CHECK(shared_bytes <= 48 * 1024, "upfirdn2d: filter too large for the CUDA kernel");
    TORCH_CHECK(grid.y <= 65535, "upfirdn2d: output too tall for the CUDA kernel");
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, dtype, "upfirdn2d_cuda", [&] {
        upfirdn2d_kernel<scalar_t><<<grid, block, shared_bytes, stream>>>(p);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}
