// lomit_fast._C: the compiled half of lomit_fast. Loading it registers the ops lomit::instance_norm
// and lomit::hain (csrc/ops/, TORCH_LIBRARY); this file binds the C++ engine (csrc/engine/) so
// Python drives exactly the code a C++ program runs.
#include <pybind11/stl.h>
#include <torch/extension.h>

#include "engine/translator.h"

namespace lomit {
std::string version() { return LOMIT_VERSION; }  // from lomit_fast/version.py (setup.py)
bool built_with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}
}  // namespace lomit

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using lomit::engine::Translator;
  m.doc() = "lomit_fast compiled extension: the lomit:: ops and the C++ engine";
  m.def("version", &lomit::version, "version of the compiled extension");
  m.def("built_with_cuda", &lomit::built_with_cuda, "whether CUDA kernels were compiled in");
  pybind11::class_<Translator>(m, "Engine", "An exported generator (.pt TorchScript or .pt2 "
                                            "AOTInductor) run by the C++ engine")
      .def(pybind11::init<const std::string&, const std::string&>(), pybind11::arg("path"),
           pybind11::arg("device") = "cpu")
      .def("run",
           [](Translator& t, const at::Tensor& images, const at::Tensor& exemplars,
              std::optional<at::Tensor> mask_in, std::optional<at::Tensor> mask_ex) {
             auto out = t.run(images, exemplars, mask_in, mask_ex);
             return std::make_tuple(out.images, out.masks_in, out.masks_ex);
           },
           pybind11::arg("images"), pybind11::arg("exemplars"),
           pybind11::arg("mask_in") = pybind11::none(), pybind11::arg("mask_ex") = pybind11::none(),
           pybind11::call_guard<pybind11::gil_scoped_release>(),
           "(images, masks_in, masks_ex) for images (N, 3, S, S) in [-1, 1]")
      .def_property_readonly("image_size", &Translator::image_size)
      .def_property_readonly("content_size", &Translator::content_size)
      .def_property_readonly("format", &Translator::format)
      .def_property_readonly("path", &Translator::path)
      .def_property_readonly("metadata", &Translator::metadata);
}
