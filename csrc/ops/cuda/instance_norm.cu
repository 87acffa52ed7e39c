// CUDA kernels of lomit::instance_norm (schema: ../instance_norm.cpp), one block per plane; the
// formulas of ../cpu/instance_norm.cpp.
#include <torch/library.h>

#include "planes.cuh"

namespace lomit::cuda {
namespace {

using at::Tensor;

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ y,
                               acc_t* mean, acc_t* rstd, const acc_t* w, const acc_t* b,
                               int64_t channels, int64_t hw, double eps, Activation act,
                               acc_t slope) {
  const int64_t plane = blockIdx.x, c = plane % channels;
  const scalar_t* xp = x + plane * hw;
  acc_t s[1] = {0};
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) s[0] += acc_t(xp[i]);
  block_sums(s);
  const acc_t mu = s[0] / hw;
  acc_t q[1] = {0};
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
    const acc_t d = acc_t(xp[i]) - mu;
    q[0] += d * d;
  }
  block_sums(q);
  const acc_t r = acc_t(1) / sqrt(q[0] / hw + acc_t(eps));
  if (threadIdx.x == 0) mean[plane] = mu, rstd[plane] = r;
  const acc_t scale = r * w[c], shift = b[c];
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x)
    y[plane * hw + i] = scalar_t(activate((acc_t(xp[i]) - mu) * scale + shift, act, slope));
}

template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                                scalar_t* __restrict__ dx, const acc_t* mean, const acc_t* rstd,
                                const acc_t* w, const acc_t* b, acc_t* dw, acc_t* db,
                                int64_t channels, int64_t hw, Activation act, acc_t slope) {
  const int64_t plane = blockIdx.x, c = plane % channels, off = plane * hw;
  const acc_t mu = mean[plane], r = rstd[plane];
  acc_t s[4] = {0, 0, 0, 0};  // g, g x_hat, g w, g w x_hat
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
    const acc_t xh = (acc_t(x[off + i]) - mu) * r;
    const acc_t g = acc_t(dy[off + i]) * activate_grad(xh * w[c] + b[c], act, slope);
    s[0] += g, s[1] += g * xh, s[2] += g * w[c], s[3] += g * w[c] * xh;
  }
  block_sums(s);
  if (threadIdx.x == 0) db[plane] = s[0], dw[plane] = s[1];
  const acc_t a = s[2] / hw, bb = s[3] / hw;
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
    const acc_t xh = (acc_t(x[off + i]) - mu) * r;
    const acc_t g = acc_t(dy[off + i]) * activate_grad(xh * w[c] + b[c], act, slope);
    dx[off + i] = scalar_t(r * (g * w[c] - a - xh * bb));
  }
}

std::tuple<Tensor, Tensor, Tensor> instance_norm_cuda(const Tensor& input,
                                                      const c10::optional<Tensor>& weight,
                                                      const c10::optional<Tensor>& bias,
                                                      double eps, c10::string_view activation,
                                                      double negative_slope) {
  const Dense d = dense_input(input, "x");
  const c10::cuda::CUDAGuard guard(d.x.device());
  const Activation act = parse_activation(activation);
  const auto dtype = stats_dtype(d.x);
  const int64_t n = d.x.size(0), c = d.x.size(1), hw = d.x.size(2) * d.x.size(3);
  Tensor y = at::empty_like(d.x), mean = at::empty({n, c}, d.x.options().dtype(dtype));
  Tensor rstd = at::empty_like(mean);
  const Tensor w = channel_affine(weight, d.x, dtype, 1.0, "weight");
  const Tensor b = channel_affine(bias, d.x, dtype, 0.0, "bias");
  if (n * c == 0) return {restore_layout(y, d), mean, rstd};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, d.x.scalar_type(),
                                  "lomit::instance_norm (cuda)", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    forward_kernel<scalar_t, acc_t><<<n * c, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        d.x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
        mean.mutable_data_ptr<acc_t>(), rstd.mutable_data_ptr<acc_t>(), w.const_data_ptr<acc_t>(),
        b.const_data_ptr<acc_t>(), c, hw, eps, act, acc_t(negative_slope));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {restore_layout(y, d), mean, rstd};
}

std::tuple<Tensor, Tensor, Tensor> instance_norm_backward_cuda(
    const Tensor& grad, const Tensor& input, const c10::optional<Tensor>& weight,
    const c10::optional<Tensor>& bias, const Tensor& mean, const Tensor& rstd,
    c10::string_view activation, double negative_slope) {
  const Dense d = dense_input(input, "x");
  TORCH_CHECK(grad.sizes() == input.sizes(), "dy must have shape ", input.sizes(), ", got ",
              grad.sizes());
  const c10::cuda::CUDAGuard guard(d.x.device());
  const Tensor dy = grad.contiguous();
  const Activation act = parse_activation(activation);
  const auto dtype = stats_dtype(d.x);
  const int64_t n = d.x.size(0), c = d.x.size(1), hw = d.x.size(2) * d.x.size(3);
  const Tensor mu = small_arg(mean, {n, c}, d.x, dtype, "mean");
  const Tensor rs = small_arg(rstd, {n, c}, d.x, dtype, "rstd");
  const Tensor w = channel_affine(weight, d.x, dtype, 1.0, "weight");
  const Tensor b = channel_affine(bias, d.x, dtype, 0.0, "bias");
  Tensor dx = at::empty_like(d.x), dw = at::empty({n, c}, d.x.options().dtype(dtype));
  Tensor db = at::empty_like(dw);
  if (n * c > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, d.x.scalar_type(),
                                    "lomit::instance_norm_backward (cuda)", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      backward_kernel<scalar_t, acc_t><<<n * c, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          dy.const_data_ptr<scalar_t>(), d.x.const_data_ptr<scalar_t>(),
          dx.mutable_data_ptr<scalar_t>(), mu.const_data_ptr<acc_t>(), rs.const_data_ptr<acc_t>(),
          w.const_data_ptr<acc_t>(), b.const_data_ptr<acc_t>(), dw.mutable_data_ptr<acc_t>(),
          db.mutable_data_ptr<acc_t>(), c, hw, act, acc_t(negative_slope));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  const Tensor none = at::empty({0}, d.x.options().dtype(dtype));
  return {restore_layout(dx, d), weight.has_value() ? dw : none, bias.has_value() ? db : none};
}

}  // namespace

TORCH_LIBRARY_IMPL(lomit, CUDA, m) {
  m.impl("instance_norm", &instance_norm_cuda);
  m.impl("instance_norm_backward", &instance_norm_backward_cuda);
}

}  // namespace lomit::cuda
