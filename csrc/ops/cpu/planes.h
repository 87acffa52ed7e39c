// What the CPU kernels of lomit::instance_norm and lomit::hain share: the two layouts they read
// natively (NCHW planes, NHWC rows), argument checks, activations and the plane statistics.
//
// Statistics follow the spec (lomit_fast/ops/reference.py): biased variance from two passes over
// the plane (never E[x^2] - E[x]^2), eps inside the square root. Elementwise math runs in the op
// dtype (fp32 for fp16/bf16/fp32 input, fp64 for fp64), also the dtype of the saved mean/rstd;
// plane sums are blocked (fp32 lanes, fp64 across blocks), reductions across rows run in fp64.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/string_view.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "../arguments.h"

namespace lomit::cpu {

// A 4-D floating input seen as N x C planes of HW elements, dense in NCHW or NHWC.
struct Planes {
  at::Tensor x;
  int64_t n, c, hw;
  bool channels_last;  // element (n, c, p) at x[(n * hw + p) * c + c], else x[(n * c + c) * hw + p]
};

inline Planes dense_planes(const at::Tensor& x, const char* name) {
  check_input(x, name);
  TORCH_CHECK(x.device().is_cpu(), name, " must be a CPU tensor here, got ", x.device());
  const bool channels_last = !x.is_contiguous() &&
                             x.is_contiguous(at::MemoryFormat::ChannelsLast);
  // NCHW and NHWC are read as they are; any other strides through a contiguous copy.
  const at::Tensor dense = channels_last ? x : x.contiguous();
  return {dense, x.size(0), x.size(1), x.size(2) * x.size(3), channels_last};
}

// A same-layout tensor (or a companion like dy) made to match the input's layout.
inline at::Tensor like_layout(const at::Tensor& t, const Planes& p, const char* name) {
  TORCH_CHECK(t.sizes() == p.x.sizes(), name, " must have shape ", p.x.sizes(), ", got ",
              t.sizes());
  return t.contiguous(p.channels_last ? at::MemoryFormat::ChannelsLast
                                      : at::MemoryFormat::Contiguous);
}

// The activation is a template argument so that every elementwise loop vectorises.
template <Activation A, typename T>
inline T activate(T y, T slope) {
  if constexpr (A == Activation::relu) return y > T(0) ? y : T(0);
  if constexpr (A == Activation::leaky_relu) return y >= T(0) ? y : y * slope;
  return y;
}

// d act(y) / dy, with the reference's conventions at 0: relu' = 0, leaky_relu' = 1.
template <Activation A, typename T>
inline T activate_grad(T y, T slope) {
  if constexpr (A == Activation::relu) return y > T(0) ? T(1) : T(0);
  if constexpr (A == Activation::leaky_relu) return y >= T(0) ? T(1) : slope;
  return T(1);
}

// f(std::integral_constant<Activation, a>{}): a loop body compiled once per activation.
template <typename F>
inline void with_activation(Activation a, F&& f) {
  using A = Activation;
  if (a == A::relu) return f(std::integral_constant<A, A::relu>{});
  if (a == A::leaky_relu) return f(std::integral_constant<A, A::leaky_relu>{});
  return f(std::integral_constant<A, A::none>{});
}

// Sums over i in [0, len) of K quantities, f(i, v) writing them to v[0..K) in the compute type
// V: lanes of V (vector registers, several add chains in flight) over blocks of 1024 elements,
// each block's lanes added as a tree, the blocks added in fp64. Vector speed with about the
// error of a pairwise sum, also for large means. A one-element plane sums exactly.
template <int K, typename V, typename F>
inline std::array<double, K> sums_of(int64_t len, F&& f) {
  constexpr int kLanes = K == 1 ? 32 : 16;
  constexpr int64_t kBlock = 1024;
  std::array<double, K> total{};
  for (int64_t start = 0; start < len; start += kBlock) {
    const int64_t end = std::min(len, start + kBlock);
    V acc[K][kLanes] = {};
    int64_t i = start;
    for (; i + kLanes <= end; i += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        V v[K];
        f(i + l, v);
        for (int k = 0; k < K; ++k) acc[k][l] += v[k];
      }
    for (; i < end; ++i) {
      V v[K];
      f(i, v);
      for (int k = 0; k < K; ++k) total[k] += v[k];
    }
    for (int k = 0; k < K; ++k) {
      for (int width = kLanes / 2; width > 0; width /= 2)
        for (int l = 0; l < width; ++l) acc[k][l] += acc[k][l + width];
      total[k] += acc[k][0];
    }
  }
  return total;
}

// Sum of f(i) for i in [0, len) (f returns the compute type), as above.
template <typename F>
inline double sum_of(int64_t len, F&& f) {
  using V = decltype(f(int64_t(0)));
  return sums_of<1, V>(len, [&](int64_t i, V* v) { v[0] = f(i); })[0];
}

// (mean, rstd) of one contiguous plane; elementwise math in the compute type T_acc.
template <typename T>
inline std::pair<double, double> plane_moments(const T* x, int64_t len, double eps) {
  using acc_t = at::opmath_type<T>;
  const double mean = sum_of(len, [&](int64_t i) { return acc_t(x[i]); }) / len;
  const acc_t center = acc_t(mean);
  const double var = sum_of(len, [&](int64_t i) {
    const acc_t d = acc_t(x[i]) - center;
    return d * d;
  }) / len;
  return {mean, 1.0 / std::sqrt(var + eps)};
}

// NHWC: sample n is hw rows of C channels. Rows are cut into chunks of ~16K elements that never
// cross a sample, so the reductions are parallel even at batch 1.
struct RowChunks {
  int64_t rows, per_sample;  // rows per chunk, chunks per sample
  RowChunks(const Planes& p)
      : rows(std::max<int64_t>(1, 16384 / std::max<int64_t>(p.c, 1))),
        per_sample((p.hw + rows - 1) / rows) {}
};

// body(n, row_begin, row_end) over every chunk of every sample, in parallel.
template <typename F>
inline void for_row_chunks(const Planes& p, F&& body) {
  const RowChunks chunks(p);
  at::parallel_for(0, p.n * chunks.per_sample, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t n = k / chunks.per_sample, lo = (k % chunks.per_sample) * chunks.rows;
      body(n, lo, std::min(p.hw, lo + chunks.rows));
    }
  });
}

// Per-sample sums of `width` quantities: body(n, row_begin, row_end, acc) adds its chunk into
// acc[0, width) (zeroed, fp64); returns totals (N x width), partial sums added exactly as fp64.
template <typename F>
inline std::vector<double> sum_row_chunks(const Planes& p, int64_t width, F&& body) {
  const RowChunks chunks(p);
  std::vector<double> partial(p.n * chunks.per_sample * width, 0.0);
  at::parallel_for(0, p.n * chunks.per_sample, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t n = k / chunks.per_sample, lo = (k % chunks.per_sample) * chunks.rows;
      body(n, lo, std::min(p.hw, lo + chunks.rows), partial.data() + k * width);
    }
  });
  std::vector<double> total(p.n * width, 0.0);
  for (int64_t k = 0; k < p.n * chunks.per_sample; ++k)
    for (int64_t j = 0; j < width; ++j)
      total[(k / chunks.per_sample) * width + j] += partial[k * width + j];
  return total;
}

// sum over rows [lo, hi) of sample n of f(row pointer, c), per channel, added into acc (fp64):
// blocks of 64 rows summed in the compute type (vector speed), the blocks added in fp64. The
// running sums must stay in registers: kept in memory, each row's add waits for the previous
// row's store. Common widths get a compile-time channel count (the sums become vector
// registers); other widths spread rows round-robin over four partial sums in memory.
template <int64_t kChannels, typename T, typename F>
inline void add_row_sums_fixed(const T* x, int64_t hw, int64_t n, int64_t lo, int64_t hi,
                               double* acc, F&& f) {
  constexpr int64_t kRows = 64;
  for (int64_t start = lo; start < hi; start += kRows) {
    at::opmath_type<T> block[kChannels] = {};
    for (int64_t i = start; i < std::min(hi, start + kRows); ++i) {
      const T* __restrict row = x + (n * hw + i) * kChannels;
      for (int64_t c = 0; c < kChannels; ++c) block[c] += f(row, c);
    }
    for (int64_t c = 0; c < kChannels; ++c) acc[c] += block[c];
  }
}

template <typename T, typename F>
inline void add_row_sums(const Planes& p, const T* x, int64_t n, int64_t lo, int64_t hi,
                         double* acc, F&& f) {
  if (p.c == 16) return add_row_sums_fixed<16>(x, p.hw, n, lo, hi, acc, f);
  if (p.c == 32) return add_row_sums_fixed<32>(x, p.hw, n, lo, hi, acc, f);
  if (p.c == 64) return add_row_sums_fixed<64>(x, p.hw, n, lo, hi, acc, f);
  constexpr int64_t kRows = 64, kWays = 4;
  std::vector<at::opmath_type<T>> block(kWays * p.c);
  for (int64_t start = lo; start < hi; start += kRows) {
    std::fill(block.begin(), block.end(), 0);
    for (int64_t i = start; i < std::min(hi, start + kRows); ++i) {
      const T* __restrict row = x + (n * p.hw + i) * p.c;
      auto* __restrict sum = block.data() + (i % kWays) * p.c;
      for (int64_t c = 0; c < p.c; ++c) sum[c] += f(row, c);
    }
    for (int64_t w = 0; w < kWays; ++w)
      for (int64_t c = 0; c < p.c; ++c) acc[c] += block[w * p.c + c];
  }
}

// mean[n * C + c], rstd[n * C + c] of every channel of every NHWC sample (two passes).
template <typename T>
inline void row_moments(const Planes& p, const T* x, double eps, std::vector<double>& mean,
                        std::vector<double>& rstd) {
  using acc_t = at::opmath_type<T>;
  mean = sum_row_chunks(p, p.c, [&](int64_t n, int64_t lo, int64_t hi, double* acc) {
    add_row_sums(p, x, n, lo, hi, acc, [](const T* row, int64_t c) { return acc_t(row[c]); });
  });
  for (double& m : mean) m /= p.hw;
  std::vector<acc_t> center(mean.begin(), mean.end());
  rstd = sum_row_chunks(p, p.c, [&](int64_t n, int64_t lo, int64_t hi, double* acc) {
    const acc_t* mu = center.data() + n * p.c;
    add_row_sums(p, x, n, lo, hi, acc, [&](const T* row, int64_t c) {
      const acc_t d = acc_t(row[c]) - mu[c];
      return d * d;
    });
  });
  for (double& r : rstd) r = 1.0 / std::sqrt(r / p.hw + eps);
}

// Planes per parallel task: enough elements to amortise a task (~16K), at least one plane.
inline int64_t plane_grain(int64_t hw) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1));
}

}  // namespace lomit::cpu
