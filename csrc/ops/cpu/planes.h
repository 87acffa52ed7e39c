// What the CPU kernels of lomit::instance_norm and lomit::hain share: the two layouts they read
// natively (NCHW planes, NHWC rows), argument checks, activations and the plane statistics.
//
// Statistics follow the spec (lomit_fast/ops/reference.py): biased variance from two passes over
// the plane (never E[x^2] - E[x]^2), eps inside the square root. Sums run in fp64 (a plane of up
// to 64K elements is then exact to fp32 output precision); elementwise math runs in the op dtype
// (fp32 for fp16/bf16/fp32 input, fp64 for fp64), which is also the dtype of the saved mean/rstd.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/string_view.h>

#include <cmath>
#include <utility>
#include <vector>

namespace lomit::cpu {

// A 4-D floating input seen as N x C planes of HW elements, dense in NCHW or NHWC.
struct Planes {
  at::Tensor x;
  int64_t n, c, hw;
  bool channels_last;  // element (n, c, p) at x[(n * hw + p) * c + c], else x[(n * c + c) * hw + p]
};

inline Planes dense_planes(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.dim() == 4, name, " must be 4-D (N, C, H, W), got shape ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), name, " must be a floating tensor, got ",
              x.scalar_type());
  TORCH_CHECK(x.device().is_cpu(), name, " must be a CPU tensor here, got ", x.device());
  if (x.is_contiguous()) return {x, x.size(0), x.size(1), x.size(2) * x.size(3), false};
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast))
    return {x, x.size(0), x.size(1), x.size(2) * x.size(3), true};
  auto dense = x.contiguous();  // any other strides: read a copy
  return {dense, x.size(0), x.size(1), x.size(2) * x.size(3), false};
}

// A same-layout tensor (or a companion like dy) made to match the input's layout.
inline at::Tensor like_layout(const at::Tensor& t, const Planes& p, const char* name) {
  TORCH_CHECK(t.sizes() == p.x.sizes(), name, " must have shape ", p.x.sizes(), ", got ",
              t.sizes());
  return t.contiguous(p.channels_last ? at::MemoryFormat::ChannelsLast
                                      : at::MemoryFormat::Contiguous);
}

// A small argument (per channel, per sample, per pixel) as a contiguous tensor of `dtype`.
inline at::Tensor small_arg(const at::Tensor& t, at::IntArrayRef shape, at::ScalarType dtype,
                            const char* name) {
  TORCH_CHECK(t.sizes() == shape, name, " must have shape ", shape, ", got ", t.sizes());
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be a floating tensor, got ",
              t.scalar_type());
  return t.to(dtype).contiguous();
}

enum class Activation { none, relu, leaky_relu };

inline Activation parse_activation(c10::string_view name) {
  if (name == "none") return Activation::none;
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  TORCH_CHECK(false, "activation must be one of ('none', 'relu', 'leaky_relu'), got '",
              std::string(name), "'");
}

template <typename T>
inline T activate(T y, Activation a, T slope) {
  if (a == Activation::relu) return y > T(0) ? y : T(0);
  if (a == Activation::leaky_relu) return y >= T(0) ? y : y * slope;
  return y;
}

// d act(y) / dy, with the reference's conventions at 0: relu' = 0, leaky_relu' = 1.
template <typename T>
inline T activate_grad(T y, Activation a, T slope) {
  if (a == Activation::relu) return y > T(0) ? T(1) : T(0);
  if (a == Activation::leaky_relu) return y >= T(0) ? T(1) : slope;
  return T(1);
}

// Sum of f(i) for i in [0, len) in fp64. Sixteen accumulators: the compiler packs them into
// vector registers, and several independent chains hide the latency of the adds.
template <typename F>
inline double sum_of(int64_t len, F&& f) {
  constexpr int kLanes = 16;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += f(i + k);
  for (; i < len; ++i) acc[0] += f(i);
  double total = 0;
  for (int k = 0; k < kLanes; ++k) total += acc[k];
  return total;
}

// (mean, rstd) of one contiguous plane.
template <typename T>
inline std::pair<double, double> plane_moments(const T* x, int64_t len, double eps) {
  const double mean = sum_of(len, [&](int64_t i) { return double(x[i]); }) / len;
  const double var = sum_of(len, [&](int64_t i) {
    const double d = double(x[i]) - mean;
    return d * d;
  }) / len;
  return {mean, 1.0 / std::sqrt(var + eps)};
}

// mean[c], rstd[c] of every channel of one NHWC sample (rows of C channels, hw rows).
template <typename T>
inline void row_moments(const T* x, int64_t hw, int64_t channels, double eps, double* mean,
                        double* rstd) {
  std::vector<double> acc(channels, 0.0);
  for (int64_t p = 0; p < hw; ++p)
    for (int64_t c = 0; c < channels; ++c) acc[c] += double(x[p * channels + c]);
  for (int64_t c = 0; c < channels; ++c) mean[c] = acc[c] / hw, acc[c] = 0.0;
  for (int64_t p = 0; p < hw; ++p)
    for (int64_t c = 0; c < channels; ++c) {
      const double d = double(x[p * channels + c]) - mean[c];
      acc[c] += d * d;
    }
  for (int64_t c = 0; c < channels; ++c) rstd[c] = 1.0 / std::sqrt(acc[c] / hw + eps);
}

// Planes per parallel task: enough elements to amortise a task (~16K), at least one plane.
inline int64_t plane_grain(int64_t hw) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1)); }

}  // namespace lomit::cpu
