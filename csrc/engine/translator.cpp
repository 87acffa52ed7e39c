// The C++ engine (translator.h): TorchScript via torch::jit::load, AOTInductor packages via
// AOTIModelPackageLoader; both read the metadata the exporters write (image_size, content_size).
#include "engine/translator.h"

#include <ATen/Version.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace lomit::engine {
namespace {

const char* kMetadataKeys[] = {"image_size", "content_size", "value_range", "lomit_fast_version",
                               "precision", "mask_convention", "model_config"};

std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

int64_t metadata_int(const std::map<std::string, std::string>& meta, const std::string& key,
                     const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end() || it->second.empty())
    throw std::runtime_error(path + " has no '" + key + "' in its metadata: export it with "
                             "`lomit-fast export --format torchscript|aoti`");
  return std::stoll(it->second);
}

// torch's whole message without the C++ backtrace, and what to do when the lomit:: ops are not
// in this program (the exported graphs call them).
std::string reason(const std::exception& e) {
  const auto* error = dynamic_cast<const c10::Error*>(&e);
  std::string what = error ? error->what_without_backtrace() : e.what();
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)); };
  while (!what.empty() && space(what.back())) what.pop_back();
  what.erase(what.begin(), std::find_if_not(what.begin(), what.end(), space));
  if (what.empty()) what = "(torch gave no reason)";
  if (!c10::Dispatcher::singleton().findSchema({"lomit::instance_norm", ""}).has_value())
    what += "\nThe lomit:: ops are not registered in this program: link liblomit_ops.so (CMake: "
            "target lomit_fast::ops, which adds -Wl,--no-as-needed; `make sdk` installs it, "
            "`python -m lomit_fast.cpp --ops-library` prints the Python package's copy) or "
            "dlopen it with RTLD_GLOBAL before loading the model";
  return what;
}

// A CPU .pt2 holds machine code for the vector ISA it was compiled for (AOTI_CPU_ISA, e.g.
// "AVX512 AVX512_VNNI"); on a CPU without it the code would die of SIGILL. Checked from the
// metadata, before any of the package's code is loaded. ATEN_CPU_CAPABILITY lowers what is allowed.
void check_cpu_isa(const std::string& path) {
  const auto meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path,
                                                                                        "model");
  const auto isa = meta.find("AOTI_CPU_ISA"), device = meta.find("AOTI_DEVICE_KEY");
  if (isa == meta.end() || device == meta.end() || device->second != "cpu") return;
  const auto rank = [](const std::string& name) {
    return name.rfind("AVX512", 0) == 0 ? 2 : name.rfind("AVX2", 0) == 0 ? 1 : 0;
  };
  const std::string here = at::get_cpu_capability();
  if (rank(isa->second) > rank(here))
    throw std::runtime_error("it holds code compiled for " + isa->second + ", which this CPU "
                             "(ATen capability " + here + ") does not run: export it again on a "
                             "machine of this kind (only .pt2 files are tied to a CPU)");
}

// AOTIModelPackageLoader extracts the package into $TMPDIR/aotinductor_XXXXXX and removes that
// folder in its destructor only, so a package that fails to load would leave it behind. The
// engine points TMPDIR at a folder of its own while loading and removes that folder when the
// load fails or the model is released. TMPDIR is process-wide: loads are serialised.
std::string private_temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = (std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                         "lomit_engine_XXXXXX").string();
  if (!mkdtemp(pattern.data()))
    throw std::runtime_error("cannot create a temporary folder for the model in " +
                             std::filesystem::path(pattern).parent_path().string());
  return pattern;
}

std::unique_ptr<torch::inductor::AOTIModelPackageLoader> load_package(
    const std::string& path, const std::string& model, c10::DeviceIndex index,
    const std::string& temp_dir) {
  static std::mutex env;
  std::lock_guard<std::mutex> lock(env);
  const char* old = std::getenv("TMPDIR");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  setenv("TMPDIR", temp_dir.c_str(), 1);
  struct Restore {
    const std::optional<std::string>& saved;
    ~Restore() { saved ? setenv("TMPDIR", saved->c_str(), 1) : unsetenv("TMPDIR"); }
  } restore{saved};
  return std::make_unique<torch::inductor::AOTIModelPackageLoader>(path, model, false, 1, index);
}

}  // namespace

struct Translator::Model {
  std::optional<torch::jit::Module> script;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package;
  // A package may also hold a model for batches of one image (its metadata names it as
  // single_image_model): compiled for that static shape, with its weights pre-packed. It runs
  // batches of 1, and every batch image by image where the metadata's image_by_image is "true"
  // (models whose activations per image outgrow the CPU's caches).
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> single_image;
  bool image_by_image = false;
  std::string temp_dir;  // the package's extraction folder (load_package)
  ~Model() {
    single_image.reset();
    package.reset();  // removes its aotinductor_* folder first
    std::error_code ignored;
    if (!temp_dir.empty()) std::filesystem::remove_all(temp_dir, ignored);
  }
};

Translator::Translator(const std::string& path, const std::string& device)
    : model_(std::make_unique<Model>()), path_(path), device_(at::kCPU) {
  try {
    device_ = at::Device(device);
  } catch (const std::exception&) {
    throw std::invalid_argument("device must be 'cpu' or 'cuda[:index]', got '" + device + "'");
  }
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error("model file not found: " + path);
  const bool aoti = std::filesystem::path(path).extension() == ".pt2";
  format_ = aoti ? "aoti" : "torchscript";
  try {
    if (aoti) {
      const auto index = device_.has_index() ? device_.index() : c10::DeviceIndex(-1);
      check_cpu_isa(path);
      model_->temp_dir = private_temp_dir();
      model_->package = load_package(path, "model", index, model_->temp_dir);
      for (const auto& [key, value] : model_->package->get_metadata()) metadata_[key] = value;
      const std::string compiled_for = metadata_["AOTI_DEVICE_KEY"];
      if (!compiled_for.empty() && compiled_for != c10::DeviceTypeName(device_.type(), true))
        throw std::invalid_argument(path + " was compiled for " + compiled_for + ", not for " +
                                    device + ": export it again with --device " + device);
      const std::string single = metadata_["single_image_model"];
      if (!single.empty()) {
        model_->single_image = load_package(path, single, index, model_->temp_dir);
        model_->image_by_image = metadata_["image_by_image"] == "true";
      }
    } else {
      torch::jit::ExtraFilesMap extra;
      for (const char* key : kMetadataKeys) extra[key] = "";
      model_->script = torch::jit::load(path, device_, extra);
      model_->script->eval();
      for (const auto& [key, value] : extra) metadata_[key] = value;
    }
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error(path + " is not a loadable " +
                             (aoti ? "AOTInductor package" : "TorchScript file") + ": " +
                             reason(e));
  }
  image_size_ = metadata_int(metadata_, "image_size", path);
  content_size_ = metadata_int(metadata_, "content_size", path);
}

Translator::~Translator() = default;
Translator::Translator(Translator&&) noexcept = default;
Translator& Translator::operator=(Translator&&) noexcept = default;

at::Tensor Translator::check_images(const char* name, const at::Tensor& t, int64_t batch) const {
  const int64_t s = image_size_;
  if (t.dim() != 4 || t.size(1) != 3 || t.size(2) != s || t.size(3) != s)
    throw std::invalid_argument(std::string(name) + " must have shape (N, 3, " +
                                std::to_string(s) + ", " + std::to_string(s) + "), got " +
                                shape_of(t));
  if (!at::isFloatingType(t.scalar_type()))
    throw std::invalid_argument(std::string(name) + " must be a floating tensor in [-1, 1]");
  if (batch > 0 && t.size(0) != batch && t.size(0) != 1)
    throw std::invalid_argument(std::string(name) + " must hold 1 or " + std::to_string(batch) +
                                " images, got " + std::to_string(t.size(0)));
  auto out = t.to(device_, at::kFloat);
  return batch > 0 ? out.expand({batch, 3, s, s}).contiguous() : out.contiguous();
}

at::Tensor Translator::check_mask(const char* name, const std::optional<at::Tensor>& mask,
                                  int64_t batch) const {
  const int64_t s = content_size_;
  if (!mask.has_value() || !mask->defined())  // -1: the graph's "use the predicted mask"
    return at::full({batch, 1, s, s}, -1.0, at::TensorOptions().device(device_));
  const at::Tensor& m = *mask;
  const bool content_res = m.dim() == 4 && m.size(2) == s && m.size(3) == s;
  const bool image_res = m.dim() == 4 && m.size(2) == image_size_ && m.size(3) == image_size_;
  if (m.dim() != 4 || m.size(1) != 1 || (m.size(0) != batch && m.size(0) != 1) ||
      !(content_res || image_res))
    throw std::invalid_argument(std::string(name) +
                                " must have shape (N or 1, 1, h, w) with h = w = " +
                                std::to_string(s) + " or " + std::to_string(image_size_) +
                                ", got " + shape_of(m));
  auto out = m.to(device_, at::kFloat);
  if (image_res && !content_res) out = at::adaptive_avg_pool2d(out, {s, s});
  if (out.min().item<float>() < 0 || out.max().item<float>() > 1)
    throw std::invalid_argument(std::string(name) + " values must lie in [0, 1]");
  return out.expand({batch, 1, s, s}).contiguous();
}

Translation Translator::run(const at::Tensor& images, const at::Tensor& exemplars,
                            const std::optional<at::Tensor>& mask_in,
                            const std::optional<at::Tensor>& mask_ex) {
  c10::InferenceMode guard;
  const at::Tensor x = check_images("images", images, 0);
  const int64_t n = x.size(0);
  std::vector<at::Tensor> inputs{x, check_images("exemplars", exemplars, n),
                                 check_mask("mask_in", mask_in, n),
                                 check_mask("mask_ex", mask_ex, n)};
  std::vector<at::Tensor> out;
  if (model_->single_image && n > 0 && (n == 1 || model_->image_by_image)) {
    std::vector<std::vector<at::Tensor>> per_image;
    for (int64_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one;
      for (const auto& t : inputs) one.push_back(t.narrow(0, i, 1).contiguous());
      per_image.push_back(model_->single_image->run(one));
    }
    for (size_t k = 0; k < per_image[0].size(); ++k) {  // output k of every image, as a batch
      std::vector<at::Tensor> part;
      for (const auto& result : per_image) part.push_back(result.at(k));
      out.push_back(n == 1 ? part[0] : at::cat(part));
    }
  } else if (model_->package) {
    out = model_->package->run(inputs);
  } else {
    auto result = model_->script->forward({inputs[0], inputs[1], inputs[2], inputs[3]});
    for (const auto& v : result.toTupleRef().elements()) out.push_back(v.toTensor());
  }
  if (out.size() != 3)
    throw std::runtime_error(path_ + " returned " + std::to_string(out.size()) +
                             " outputs, expected 3 (images, masks_in, masks_ex)");
  return {out[0], out[1], out[2]};
}

}  // namespace lomit::engine
