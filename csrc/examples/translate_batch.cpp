// The smallest program on the lomit_fast C++ SDK (CMakeLists.txt beside it says how to build it):
// load an exported generator, translate a batch with one exemplar, print a checksum.
//
//   translate_batch MODEL(.pt|.pt2) [BATCH=8] [OUT.f32]
//
// The batch is made up rather than read from files, so no image library is needed: image i holds
// sin(0.01 (k + 1000 i)) over its flattened values k, the exemplar sin(0.02 k). It prints
// "checksum images <sum> masks_in <sum> masks_ex <sum>" and, given OUT.f32, writes the translated
// images there as raw float32 (BATCH, 3, S, S), so tests/app/test_sdk.py can compare every value
// with the Python engine. The CPU threads follow OMP_NUM_THREADS; at::set_num_threads(n) in code.
#include <lomit_fast/engine/translator.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: translate_batch MODEL(.pt|.pt2) [BATCH=8] [OUT.f32]\n");
    return 2;
  }
  try {
    const int64_t n = argc > 2 ? std::stoll(argv[2]) : 8;
    lomit::engine::Translator translator(argv[1], "cpu");
    const int64_t s = translator.image_size(), k = 3 * s * s;
    const at::Tensor images = (at::arange(k, at::kFloat).unsqueeze(0) +
                               at::arange(n, at::kFloat).unsqueeze(1) * 1000)
                                  .mul(0.01).sin().reshape({n, 3, s, s});
    const at::Tensor exemplar = at::arange(k, at::kFloat).mul(0.02).sin().reshape({1, 3, s, s});

    const lomit::engine::Translation out = translator.run(images, exemplar);

    std::printf("checksum images %.6f masks_in %.6f masks_ex %.6f\n",
                out.images.sum().item<double>(), out.masks_in.sum().item<double>(),
                out.masks_ex.sum().item<double>());
    if (argc > 3) {
      const at::Tensor pixels = out.images.to(at::kFloat).contiguous();
      std::ofstream(argv[3], std::ios::binary)
          .write(static_cast<const char*>(pixels.data_ptr()), pixels.nbytes());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "translate_batch: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
