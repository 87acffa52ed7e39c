// What the CUDA kernels of lomit::instance_norm and lomit::hain share: one thread block per
// (n, c) plane of a contiguous NCHW tensor, block-wide sums, activations. Channels-last inputs
// are read through a contiguous copy and the result is returned channels-last (the layout the
// fakes promise). These kernels are the C++ CUDA path for programs without Python (C++ apps
// running exported files on a GPU); Python on CUDA uses the tuned Triton kernels.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/string_view.h>

#include "../arguments.h"

namespace lomit::cuda {

constexpr int kThreads = 256;

// Sums of K per-thread values over the block; every thread gets the totals.
template <typename T, int K>
__device__ inline void block_sums(T (&v)[K]) {
  __shared__ T partial[K][kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int k = 0; k < K; ++k) {
    for (int offset = 16; offset > 0; offset /= 2)
      v[k] += __shfl_down_sync(0xffffffff, v[k], offset);
    if (lane == 0) partial[k][warp] = v[k];
  }
  __syncthreads();
  for (int k = 0; k < K; ++k) {
    T total = 0;
    for (int w = 0; w < kThreads / 32; ++w) total += partial[k][w];
    v[k] = total;
  }
  __syncthreads();  // partial may be reused by the next call
}

template <typename T>
__device__ inline T activate(T y, Activation a, T slope) {
  if (a == Activation::relu) return y > T(0) ? y : T(0);
  if (a == Activation::leaky_relu) return y >= T(0) ? y : y * slope;
  return y;
}

// d act(y) / dy with the reference's conventions at 0: relu' = 0, leaky_relu' = 1.
template <typename T>
__device__ inline T activate_grad(T y, Activation a, T slope) {
  if (a == Activation::relu) return y > T(0) ? T(1) : T(0);
  if (a == Activation::leaky_relu) return y >= T(0) ? T(1) : slope;
  return T(1);
}

// The input as contiguous NCHW, and whether results go back to channels-last.
struct Dense {
  at::Tensor x;
  bool channels_last;
};

inline Dense dense_input(const at::Tensor& x, const char* name) {
  check_input(x, name);
  const bool cl = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  return {x.contiguous(), cl};
}

inline at::Tensor restore_layout(const at::Tensor& t, const Dense& d) {
  return d.channels_last ? t.contiguous(at::MemoryFormat::ChannelsLast) : t;
}

}  // namespace lomit::cuda
