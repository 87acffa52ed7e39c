// PNG and JPEG files <-> 8-bit RGB pixels, with libpng and libjpeg. Every error is a
// std::runtime_error that names the file and says what is wrong with it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lomit::app {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height x width x 3, row-major
};

// Reads an RGB PNG or JPEG of exactly size x size pixels (checked before decoding, so a huge file
// costs nothing); grayscale, alpha and CMYK files are refused rather than guessed at.
RgbImage read_rgb(const std::string& path, int size);

// Writes PNG (.png) or JPEG (.jpg/.jpeg, quality 95) through a temporary file renamed into place
// (.<name>.<pid>-<n>.tmp beside it: unique per process and call).
void write_rgb(const std::string& path, const RgbImage& image);

bool is_image_file(const std::string& path);  // by extension: .png .jpg .jpeg (any case)

}  // namespace lomit::app
