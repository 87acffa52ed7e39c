// Schemas of lomit::instance_norm and its backward: the same names, arguments and results as the
// Triton ops (lomit_fast/ops/triton_ops.py) and the semantics of instance_norm_ref
// (lomit_fast/ops/reference.py). Device kernels: cpu/instance_norm.cpp, cuda/instance_norm.cu.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lomit, m) {
  // -> (y, mean, rstd); mean/rstd: (N, C) statistics, fp32 (fp64 for fp64 input).
  m.def("instance_norm(Tensor x, Tensor? weight, Tensor? bias, float eps, str activation, "
        "float negative_slope) -> (Tensor, Tensor, Tensor)");
  // -> (dx, dweight, dbias); dweight/dbias: (N, C) per-sample partial sums (the caller sums over
  // N), or empty when weight/bias is None.
  m.def("instance_norm_backward(Tensor dy, Tensor x, Tensor? weight, Tensor? bias, Tensor mean, "
        "Tensor rstd, str activation, float negative_slope) -> (Tensor, Tensor, Tensor)");
}
