// The arguments of the lomit:: ops as their CPU and CUDA kernels take them: checks that name the
// argument, the statistics dtype, small arguments converted once, the fused activation parsed.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <string>
#include <vector>

namespace lomit {

// The input (x, c): a floating (N, C, H, W) tensor.
inline void check_input(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.dim() == 4, name, " must be 4-D (N, C, H, W), got shape ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), name, " must be a floating tensor, got ",
              x.scalar_type());
}

// Statistics, partial gradients and the elementwise math: fp32, or fp64 for fp64 input.
inline at::ScalarType stats_dtype(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// A small argument (per channel, per sample, per pixel) as a contiguous tensor of `dtype`.
inline at::Tensor small_arg(const at::Tensor& t, at::IntArrayRef shape, const at::Tensor& like,
                            at::ScalarType dtype, const char* name) {
  TORCH_CHECK(t.sizes() == shape, name, " must have shape ", shape, ", got ", t.sizes());
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be a floating tensor, got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), name, " is on ", t.device(), " but the input is on ",
              like.device());
  return t.to(dtype).contiguous();
}

// instance_norm's weight / bias as (C,) vectors; None becomes `fill` (1 / 0).
inline at::Tensor channel_affine(const c10::optional<at::Tensor>& t, const at::Tensor& x,
                                 at::ScalarType dtype, double fill, const char* name) {
  if (!t.has_value()) return at::full({x.size(1)}, fill, x.options().dtype(dtype));
  return small_arg(*t, {x.size(1)}, x, dtype, name);
}

// hain's mask (N, 1, H, W) and style affines (N, C), checked against the content c.
struct StyleArgs {
  at::Tensor mask, mu_f, sigma_f, mu_b, sigma_b;
};

inline StyleArgs style_args(const at::Tensor& c, const at::Tensor& mask, const at::Tensor& mu_f,
                            const at::Tensor& sigma_f, const at::Tensor& mu_b,
                            const at::Tensor& sigma_b, at::ScalarType dtype) {
  // vectors, not brace lists: an IntArrayRef of a brace list would dangle
  const std::vector<int64_t> nc{c.size(0), c.size(1)}, pixels{c.size(0), 1, c.size(2), c.size(3)};
  return {small_arg(mask, pixels, c, dtype, "mask"), small_arg(mu_f, nc, c, dtype, "mu_f"),
          small_arg(sigma_f, nc, c, dtype, "sigma_f"), small_arg(mu_b, nc, c, dtype, "mu_b"),
          small_arg(sigma_b, nc, c, dtype, "sigma_b")};
}

// The activation instance_norm fuses after the norm (applied by each device its own way).
enum class Activation { none, relu, leaky_relu };

inline Activation parse_activation(c10::string_view name) {
  if (name == "none") return Activation::none;
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  TORCH_CHECK(false, "activation must be one of ('none', 'relu', 'leaky_relu'), got '",
              std::string(name), "'");
}

}  // namespace lomit
