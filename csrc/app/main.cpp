// lomit-translate-cpp: translate a folder of images with an exported LOMIT generator, from C++.
//
//   lomit-translate-cpp --model FILE(.pt|.pt2) --input DIR --exemplar IMG --output DIR
//                       [--batch N] [--device cpu|cuda] [--format png|jpg] [--threads N]
//
// Every input image (PNG/JPEG, RGB, the model's size) is translated with the exemplar's style and
// written to DIR/<stem>.<format> through a temporary file unique to this process; inputs whose
// stems repeat (a.jpg, a.png) get <stem>_1, <stem>_2, ... in sorted order, the rule of
// `lomit-fast translate` (lomit_fast/engine/files.py, output_names). An entry that cannot be
// read (unreadable image, symlink loop) or written (full disk) is reported and counted as failed:
// translated + failed = entries. At the end it prints images/s, end to end (decode, model,
// encode) and in the model alone, after two untimed warm-up batches. Exit status: 0 all
// translated, 1 some inputs failed, 2 bad arguments or model.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "engine/translator.h"
#include "image_io.h"

namespace fs = std::filesystem;
using lomit::app::RgbImage;

namespace {

const char* kUsage =
    "usage: lomit-translate-cpp --model FILE --input DIR --exemplar IMG --output DIR\n"
    "                           [--batch N] [--device cpu|cuda] [--format png|jpg] [--threads N]\n"
    "  --model     exported generator: TorchScript (.pt) or AOTInductor (.pt2),\n"
    "              from `lomit-fast export --format torchscript|aoti`\n"
    "  --input     folder of RGB PNG/JPEG images of the model's size\n"
    "  --exemplar  the image whose foreground style is taken\n"
    "  --output    folder for the translations (created; never the input folder)\n"
    "  --batch     images per forward pass (default 8)\n"
    "  --device    cpu (default) or cuda\n"
    "  --format    png (default) or jpg\n"
    "  --threads   CPU threads of the model (default: OMP_NUM_THREADS, else one per core; use 1\n"
    "              when other processes share the cores)\n";

struct Options {
  std::string model, input, exemplar, output, device = "cpu", format = "png";
  int batch = 8, threads = 0;
};

int positive(const std::string& name, const std::string& value) {
  int n = 0;
  try {
    size_t used = 0;
    n = std::stoi(value, &used);
    if (used != value.size()) n = 0;
  } catch (const std::exception&) {
  }
  if (n < 1) throw std::invalid_argument(name + " must be a positive integer, got " + value);
  return n;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--model") o.model = value;
    else if (arg == "--input") o.input = value;
    else if (arg == "--exemplar") o.exemplar = value;
    else if (arg == "--output") o.output = value;
    else if (arg == "--device") o.device = value;
    else if (arg == "--format") o.format = value;
    else if (arg == "--batch") o.batch = positive(arg, value);
    else if (arg == "--threads") o.threads = positive(arg, value);
    else {
      throw std::invalid_argument("unknown argument " + arg);
    }
  }
  for (auto [name, value] : {std::pair{"--model", &o.model}, {"--input", &o.input},
                             {"--exemplar", &o.exemplar}, {"--output", &o.output}})
    if (value->empty()) throw std::invalid_argument(std::string(name) + " is required");
  if (o.format != "png" && o.format != "jpg")
    throw std::invalid_argument("--format must be png or jpg, got " + o.format);
  if (!fs::is_directory(o.input))
    throw std::invalid_argument("--input " + o.input + " is not a folder");
  if (fs::exists(o.output) && fs::equivalent(o.input, o.output))
    throw std::invalid_argument("--output must not be the input folder (inputs are never "
                                "overwritten)");
  return o;
}

// (H, W, 3) uint8 -> (3, H, W) float in [-1, 1]: the same arithmetic as lomit_fast.io.from_uint8.
at::Tensor to_tensor(const RgbImage& image) {
  auto pixels = at::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                              {image.height, image.width, 3}, at::kByte);
  return pixels.permute({2, 0, 1}).to(at::kFloat).div(127.5).sub(1);
}

// (3, H, W) in [-1, 1] -> 8-bit pixels: the same arithmetic as lomit_fast.io.to_uint8.
RgbImage to_image(const at::Tensor& t) {
  auto pixels = t.detach().to(at::kCPU, at::kFloat).clamp(-1, 1).add(1).mul(127.5).round()
                    .to(at::kByte).permute({1, 2, 0}).contiguous();
  RgbImage image{int(pixels.size(1)), int(pixels.size(0)), {}};
  image.pixels.assign(pixels.data_ptr<uint8_t>(), pixels.data_ptr<uint8_t>() + pixels.numel());
  return image;
}

// The PNG/JPEG files of a folder, sorted, and the entries whose type cannot be read (a symlink
// loop, a link into a folder without permission) as "path: reason".
std::pair<std::vector<std::string>, std::vector<std::string>> list_images(
    const std::string& folder) {
  std::vector<std::string> files, problems;
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  if (ec) throw std::invalid_argument("--input " + folder + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string path = it->path().string();
    std::error_code status;
    const bool regular = it->is_regular_file(status);
    if (status) problems.push_back(path + ": " + status.message());
    else if (regular && lomit::app::is_image_file(path)) files.push_back(path);
  }
  if (ec) problems.push_back(folder + ": listing stopped: " + ec.message());
  std::sort(files.begin(), files.end());
  return {files, problems};
}

// <stem>.<format>, and <stem>_1, <stem>_2, ... for stems already taken: output_names of
// lomit_fast/engine/files.py, so both translators name a folder's outputs alike.
std::vector<std::string> output_names(const std::vector<std::string>& files,
                                      const std::string& format) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& file : files) {
    const std::string stem = fs::path(file).stem().string();
    std::string name = stem + "." + format;
    for (int k = 1; seen.count(name); ++k) name = stem + "_" + std::to_string(k) + "." + format;
    seen.insert(name);
    names.push_back(name);
  }
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  using clock = std::chrono::steady_clock;
  Options opt;
  std::unique_ptr<lomit::engine::Translator> engine;
  at::Tensor exemplar;
  try {
    opt = parse(argc, argv);
    if (opt.threads > 0) at::set_num_threads(opt.threads);
    engine = std::make_unique<lomit::engine::Translator>(opt.model, opt.device);
    exemplar = to_tensor(lomit::app::read_rgb(opt.exemplar, engine->image_size())).unsqueeze(0);
    fs::create_directories(opt.output);
    // One untimed batch: TorchScript profiles and optimises its graph on the first calls.
    const int64_t s = engine->image_size();
    engine->run(at::zeros({opt.batch, 3, s, s}), exemplar);
    engine->run(at::zeros({opt.batch, 3, s, s}), exemplar);
  } catch (const std::exception& e) {
    std::cerr << "lomit-translate-cpp: error: " << e.what() << "\n";
    if (dynamic_cast<const std::invalid_argument*>(&e)) std::cerr << kUsage;
    return 2;
  }
  std::vector<std::string> files, problems;
  try {
    std::tie(files, problems) = list_images(opt.input);
  } catch (const std::exception& e) {
    std::cerr << "lomit-translate-cpp: error: " << e.what() << "\n";
    return 2;
  }
  int translated = 0, failed = int(problems.size());
  for (const auto& problem : problems) std::cerr << "skipped " << problem << "\n";
  if (files.empty()) {
    std::cerr << "lomit-translate-cpp: error: no PNG or JPEG images in " << opt.input << "\n";
    return 2;
  }
  const auto targets = output_names(files, opt.format);
  double model_seconds = 0;
  const auto start = clock::now();
  for (size_t first = 0; first < files.size(); first += opt.batch) {
    std::vector<at::Tensor> batch;
    std::vector<std::string> names;
    for (size_t i = first; i < std::min(files.size(), first + opt.batch); ++i) {
      try {
        batch.push_back(to_tensor(lomit::app::read_rgb(files[i], engine->image_size())));
        names.push_back(targets[i]);
      } catch (const std::exception& e) {
        std::cerr << "skipped " << e.what() << "\n";
        ++failed;
      }
    }
    if (batch.empty()) continue;
    lomit::engine::Translation out;
    try {
      const auto t0 = clock::now();
      out = engine->run(at::stack(batch), exemplar);
      model_seconds += std::chrono::duration<double>(clock::now() - t0).count();
    } catch (const std::exception& e) {
      std::cerr << "lomit-translate-cpp: error: " << e.what() << "\n";
      failed += int(names.size());
      continue;
    }
    for (size_t k = 0; k < names.size(); ++k) {  // each write succeeds or fails on its own
      try {
        lomit::app::write_rgb((fs::path(opt.output) / names[k]).string(),
                              to_image(out.images[k]));
        ++translated;
      } catch (const std::exception& e) {
        std::cerr << "skipped " << e.what() << "\n";
        ++failed;
      }
    }
  }
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  std::printf("translated %d image(s), %d failed, in %.2f s: %.1f images/s end to end, "
              "%.1f images/s in the model (batch %d, %s, %s)\n",
              translated, failed, seconds, translated / std::max(seconds, 1e-9),
              translated / std::max(model_seconds, 1e-9), opt.batch, opt.device.c_str(),
              engine->format().c_str());
  return failed ? 1 : 0;
}
