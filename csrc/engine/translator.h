// lomit::engine::Translator: runs an exported LOMIT generator from C++, without Python.
//
//   lomit::engine::Translator t("model.pt", "cpu");   // TorchScript (.pt) or AOTInductor (.pt2)
//   auto out = t.run(images, exemplars);              // images (N, 3, S, S) in [-1, 1]
//   out.images, out.masks_in, out.masks_ex
//
// Installed as <lomit_fast/engine/translator.h> by `make sdk PREFIX=<dir>` (CMake target
// lomit_fast::engine). The files come from `lomit-fast export --format torchscript|aoti`; their
// norms call the ops lomit::instance_norm / lomit::hain, so liblomit_ops.so must be loaded
// (lomit_fast::ops links it with --no-as-needed). Errors are exceptions with the file or argument
// named: std::runtime_error for files (with torch's whole reason, and which library to link when
// the ops are missing), std::invalid_argument for inputs. A .pt2 is extracted into a private
// folder under $TMPDIR that is removed when loading fails or the Translator is destroyed. The CPU
// threads: OMP_NUM_THREADS, or at::set_num_threads(n) before the first run.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace lomit::engine {

struct Translation {
  at::Tensor images;    // (N, 3, S, S) in [-1, 1]
  at::Tensor masks_in;  // (N, 1, s, s) in [0, 1]
  at::Tensor masks_ex;  // (N, 1, s, s) in [0, 1]
};

class Translator {
 public:
  Translator(const std::string& path, const std::string& device = "cpu");
  ~Translator();
  Translator(Translator&&) noexcept;
  Translator& operator=(Translator&&) noexcept;

  // exemplars: N or 1 images; masks (optional, replace the predicted ones): (N or 1, 1, h, w)
  // at content (s x s) or image (S x S) resolution, in [0, 1].
  Translation run(const at::Tensor& images, const at::Tensor& exemplars,
                  const std::optional<at::Tensor>& mask_in = std::nullopt,
                  const std::optional<at::Tensor>& mask_ex = std::nullopt);

  int64_t image_size() const { return image_size_; }
  int64_t content_size() const { return content_size_; }
  const std::string& format() const { return format_; }  // "torchscript" or "aoti"
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  struct Model;  // the loaded TorchScript module or AOTI package
  std::unique_ptr<Model> model_;
  std::string path_, format_;
  at::Device device_;
  std::map<std::string, std::string> metadata_;
  int64_t image_size_ = 0, content_size_ = 0;

  at::Tensor check_images(const char* name, const at::Tensor& t, int64_t batch) const;
  at::Tensor check_mask(const char* name, const std::optional<at::Tensor>& mask,
                        int64_t batch) const;
};

}  // namespace lomit::engine
