// Schemas of lomit::hain (Highway AdaIN) and its backward: the same names, arguments and results
// as the Triton ops (lomit_fast/ops/triton_ops.py) and the semantics of hain_ref
// (lomit_fast/ops/reference.py). Device kernels: cpu/hain.cpp, cuda/hain.cu.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lomit, m) {
  // -> (out, mean, rstd); mean/rstd: (N, C) statistics of c, fp32 (fp64 for fp64 input).
  m.def("hain(Tensor c, Tensor mask, Tensor mu_f, Tensor sigma_f, Tensor mu_b, Tensor sigma_b, "
        "float eps) -> (Tensor, Tensor, Tensor)");
  // -> (dc, dmask (N, 1, H, W), dstyles (4, N, C) in the order mu_f, sigma_f, mu_b, sigma_b);
  // dmask and dstyles in the statistics dtype.
  m.def("hain_backward(Tensor dy, Tensor c, Tensor mask, Tensor mu_f, Tensor sigma_f, "
        "Tensor mu_b, Tensor sigma_b, Tensor mean, Tensor rstd) -> (Tensor, Tensor, Tensor)");
}
