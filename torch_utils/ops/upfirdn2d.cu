// upfirdn2d kernel: one thread per output pixel, visiting only the filter taps that land on
// real (not zero-inserted) input pixels.
#include <algorithm>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include "upfirdn2d.h"

// First tap k >= 0 with (u0 + k) divisible by up, i.e. k = (-u0) mod up.
__device__ __forceinline__ int first_tap(int u0, int up) {
    int k = (-u0) % up;
    return k < 0 ? k + up : k;
}

template <class T>
__global__ void upfirdn2d_kernel(Upfirdn2dParams p) {
    using A = at::opmath_type<T>;
    extern __shared__ float taps[];  // The filter, pre-flipped so that it is applied as a correlation.
    const int num_taps = p.filter_h * p.filter_w;
    for (int t = threadIdx.x; t < num_taps; t += blockDim.x)
        taps[t] = p.f[p.flip_filter ? t : num_taps - 1 - t];
    __syncthreads();

    const T* x = static_cast<const T*>(p.x);
    T* y = static_cast<T*>(p.y);
    const int64_t plane_size = int64_t(p.out_h) * p.out_w;
    const int64_t total = p.planes * plane_size;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int ox = static_cast<int>(i % p.out_w);
        const int oy = static_cast<int>((i / p.out_w) % p.out_h);
        const T* plane = x + (i / plane_size) * int64_t(p.in_h) * p.in_w;

        // Tap (ky, kx) reads the upsampled+padded image at (u0y + ky, u0x + kx).
        const int u0y = oy * p.down_y - p.pad_y0, u0x = ox * p.down_x - p.pad_x0;
        const int ky0 = first_tap(u0y, p.up_y), kx0 = first_tap(u0x, p.up_x);
        A acc = 0;
        for (int ky = ky0; ky < p.filter_h; ky += p.up_y) {
            const int iy = (u0y + ky) / p.up_y;
            if (iy < 0 || iy >= p.in_h)
                continue;
            const T* row = plane + int64_t(iy) * p.in_w;
            const float* tap_row = taps + ky * p.filter_w;
            for (int kx = kx0; kx < p.filter_w; kx += p.up_x) {
                const int ix = (u0x + kx) / p.up_x;
                if (ix >= 0 && ix < p.in_w)
                    acc += static_cast<A>(row[ix]) * static_cast<A>(tap_row[kx]);
            }
        }
        y[i] = static_cast<T>(acc * static_cast<A>(p.gain));
    }
}

void upfirdn2d_cuda(const Upfirdn2dParams& p, c10::ScalarType dtype, cudaStream_t stream) {
    const int threads = 256;
    const int64_t total = p.planes * p.out_h * p.out_w;
    const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, int64_t(1) << 20);
    const size_t shared_bytes = sizeof(float) * p.filter_h * p.filter_w;
    TORCH_CHECK(shared_bytes <= 48 * 1024, "upfirdn2d: filter too large for the CUDA kernel");
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, dtype, "upfirdn2d_cuda", [&] {
        upfirdn2d_kernel<scalar_t><<<static_cast<unsigned>(blocks), threads, shared_bytes, stream>>>(p);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}
