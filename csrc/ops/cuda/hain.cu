// CUDA kernels of lomit::hain (schema: ../hain.cpp), one block per plane, and one thread per
// pixel for dmask (a sum over channels); the formulas of ../cpu/hain.cpp.
#include <torch/library.h>

#include "planes.cuh"

namespace lomit::cuda {
namespace {

using at::Tensor;

// The style affines of plane (n, c): sigma_b + m ds and mu_b + m dm.
template <typename acc_t>
struct Affine {
  acc_t s0, ds, b0, dm;
  __device__ Affine(const acc_t* mf, const acc_t* sf, const acc_t* mb, const acc_t* sb, int64_t nc)
      : s0(sb[nc]), ds(sf[nc] - sb[nc]), b0(mb[nc]), dm(mf[nc] - mb[nc]) {}
};

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ mask,
                               const acc_t* mf, const acc_t* sf, const acc_t* mb, const acc_t* sb,
                               scalar_t* __restrict__ out, acc_t* mean, acc_t* rstd,
                               int64_t channels, int64_t hw, double eps) {
  const int64_t plane = blockIdx.x, off = plane * hw;
  const acc_t* m = mask + (plane / channels) * hw;
  acc_t s[1] = {0};
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) s[0] += acc_t(x[off + i]);
  block_sums(s);
  const acc_t mu = s[0] / hw;
  acc_t q[1] = {0};
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
    const acc_t d = acc_t(x[off + i]) - mu;
    q[0] += d * d;
  }
  block_sums(q);
  const acc_t r = acc_t(1) / sqrt(q[0] / hw + acc_t(eps));
  if (threadIdx.x == 0) mean[plane] = mu, rstd[plane] = r;
  const Affine<acc_t> a(mf, sf, mb, sb, plane);
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x)
    out[off + i] =
        scalar_t((acc_t(x[off + i]) - mu) * r * (a.s0 + m[i] * a.ds) + (a.b0 + m[i] * a.dm));
}

template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                                const acc_t* __restrict__ mask, const acc_t* mf, const acc_t* sf,
                                const acc_t* mb, const acc_t* sb, const acc_t* mean,
                                const acc_t* rstd, scalar_t* __restrict__ dc, acc_t* dstyles,
                                int64_t planes, int64_t channels, int64_t hw) {
  const int64_t plane = blockIdx.x, off = plane * hw;
  const acc_t* m = mask + (plane / channels) * hw;
  const acc_t mu = mean[plane], r = rstd[plane];
  const Affine<acc_t> a(mf, sf, mb, sb, plane);
  acc_t s[6] = {0, 0, 0, 0, 0, 0};  // dy, dy m, dy x_hat, dy x_hat m, g_hat, g_hat x_hat
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
    const acc_t xh = (acc_t(x[off + i]) - mu) * r, g = acc_t(dy[off + i]);
    const acc_t g_hat = g * (a.s0 + m[i] * a.ds);
    s[0] += g, s[1] += g * m[i], s[2] += g * xh, s[3] += g * xh * m[i];
    s[4] += g_hat, s[5] += g_hat * xh;
  }
  block_sums(s);
  if (threadIdx.x == 0) {
    dstyles[plane] = s[1], dstyles[2 * planes + plane] = s[0] - s[1];
    dstyles[planes + plane] = s[3], dstyles[3 * planes + plane] = s[2] - s[3];
  }
  const acc_t mean_g = s[4] / hw, mean_gx = s[5] / hw;
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
    const acc_t xh = (acc_t(x[off + i]) - mu) * r;
    dc[off + i] = scalar_t(r * (acc_t(dy[off + i]) * (a.s0 + m[i] * a.ds) - mean_g - xh * mean_gx));
  }
}

template <typename scalar_t, typename acc_t>
__global__ void dmask_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                             const acc_t* mf, const acc_t* sf, const acc_t* mb, const acc_t* sb,
                             const acc_t* mean, const acc_t* rstd, acc_t* dmask, int64_t n,
                             int64_t channels, int64_t hw) {
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;  // (sample, pixel)
  if (k >= n * hw) return;
  const int64_t s = k / hw, i = k % hw;
  acc_t total = 0;
  for (int64_t c = 0; c < channels; ++c) {
    const int64_t nc = s * channels + c, e = nc * hw + i;
    const acc_t xh = (acc_t(x[e]) - mean[nc]) * rstd[nc];
    total += acc_t(dy[e]) * (xh * (sf[nc] - sb[nc]) + (mf[nc] - mb[nc]));
  }
  dmask[k] = total;
}

std::tuple<Tensor, Tensor, Tensor> hain_cuda(const Tensor& content, const Tensor& mask,
                                             const Tensor& mu_f, const Tensor& sigma_f,
                                             const Tensor& mu_b, const Tensor& sigma_b,
                                             double eps) {
  const Dense d = dense_input(content, "c");
  const c10::cuda::CUDAGuard guard(d.x.device());
  const auto dtype = stats_dtype(d.x);
  const StyleArgs st = style_args(d.x, mask, mu_f, sigma_f, mu_b, sigma_b, dtype);
  const int64_t n = d.x.size(0), c = d.x.size(1), hw = d.x.size(2) * d.x.size(3);
  Tensor out = at::empty_like(d.x), mean = at::empty({n, c}, d.x.options().dtype(dtype));
  Tensor rstd = at::empty_like(mean);
  if (n * c == 0) return {restore_layout(out, d), mean, rstd};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, d.x.scalar_type(),
                                  "lomit::hain (cuda)", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    forward_kernel<scalar_t, acc_t><<<n * c, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        d.x.const_data_ptr<scalar_t>(), st.mask.const_data_ptr<acc_t>(),
        st.mu_f.const_data_ptr<acc_t>(), st.sigma_f.const_data_ptr<acc_t>(),
        st.mu_b.const_data_ptr<acc_t>(), st.sigma_b.const_data_ptr<acc_t>(),
        out.mutable_data_ptr<scalar_t>(), mean.mutable_data_ptr<acc_t>(),
        rstd.mutable_data_ptr<acc_t>(), c, hw, eps);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {restore_layout(out, d), mean, rstd};
}

std::tuple<Tensor, Tensor, Tensor> hain_backward_cuda(
    const Tensor& grad, const Tensor& content, const Tensor& mask, const Tensor& mu_f,
    const Tensor& sigma_f, const Tensor& mu_b, const Tensor& sigma_b, const Tensor& mean,
    const Tensor& rstd) {
  const Dense d = dense_input(content, "c");
  TORCH_CHECK(grad.sizes() == content.sizes(), "dy must have shape ", content.sizes(), ", got ",
              grad.sizes());
  const c10::cuda::CUDAGuard guard(d.x.device());
  const Tensor dy = grad.contiguous();
  const auto dtype = stats_dtype(d.x);
  const StyleArgs st = style_args(d.x, mask, mu_f, sigma_f, mu_b, sigma_b, dtype);
  const int64_t n = d.x.size(0), c = d.x.size(1), hw = d.x.size(2) * d.x.size(3);
  const Tensor mu = small_arg(mean, {n, c}, d.x, dtype, "mean");
  const Tensor rs = small_arg(rstd, {n, c}, d.x, dtype, "rstd");
  Tensor dc = at::empty_like(d.x);
  Tensor dmask = at::zeros({n, 1, d.x.size(2), d.x.size(3)}, d.x.options().dtype(dtype));
  Tensor dstyles = at::zeros({4, n, c}, d.x.options().dtype(dtype));
  if (n * c * hw == 0) return {restore_layout(dc, d), dmask, dstyles};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, d.x.scalar_type(),
                                  "lomit::hain_backward (cuda)", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    auto stream = c10::cuda::getCurrentCUDAStream();
    const acc_t *mf = st.mu_f.const_data_ptr<acc_t>(), *sf = st.sigma_f.const_data_ptr<acc_t>();
    const acc_t *mb = st.mu_b.const_data_ptr<acc_t>(), *sb = st.sigma_b.const_data_ptr<acc_t>();
    backward_kernel<scalar_t, acc_t><<<n * c, kThreads, 0, stream>>>(
        dy.const_data_ptr<scalar_t>(), d.x.const_data_ptr<scalar_t>(),
        st.mask.const_data_ptr<acc_t>(), mf, sf, mb, sb, mu.const_data_ptr<acc_t>(),
        rs.const_data_ptr<acc_t>(), dc.mutable_data_ptr<scalar_t>(),
        dstyles.mutable_data_ptr<acc_t>(), n * c, c, hw);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const int64_t blocks = (n * hw + kThreads - 1) / kThreads;
    dmask_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
        dy.const_data_ptr<scalar_t>(), d.x.const_data_ptr<scalar_t>(), mf, sf, mb, sb,
        mu.const_data_ptr<acc_t>(), rs.const_data_ptr<acc_t>(), dmask.mutable_data_ptr<acc_t>(),
        n, c, hw);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {restore_layout(dc, d), dmask, dstyles};
}

}  // namespace

TORCH_LIBRARY_IMPL(lomit, CUDA, m) {
  m.impl("hain", &hain_cuda);
  m.impl("hain_backward", &hain_backward_cuda);
}

}  // namespace lomit::cuda
