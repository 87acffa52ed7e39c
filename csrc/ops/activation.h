// The activations lomit::instance_norm fuses after the norm, parsed once for the CPU and CUDA
// kernels (each applies them its own way: templates on the CPU, device functions on the GPU).
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <string>

namespace lomit {

enum class Activation { none, relu, leaky_relu };

inline Activation parse_activation(c10::string_view name) {
  if (name == "none") return Activation::none;
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  TORCH_CHECK(false, "activation must be one of ('none', 'relu', 'leaky_relu'), got '",
              std::string(name), "'");
}

}  // namespace lomit
