// lomit_fast._C: the compiled half of lomit_fast. The ops (lomit::instance_norm, lomit::hain)
// register themselves with TORCH_LIBRARY in csrc/ops/; this file holds the Python module.
#include <torch/extension.h>

namespace lomit {
std::string version() { return "0.1.0"; }
bool built_with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}
}  // namespace lomit

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "lomit_fast compiled extension";
  m.def("version", &lomit::version, "version of the compiled extension");
  m.def("built_with_cuda", &lomit::built_with_cuda, "whether CUDA kernels were compiled in");
}
