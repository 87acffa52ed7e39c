// PNG through libpng's simplified API; JPEG through libjpeg with an error handler that throws
// (libjpeg's default handler calls exit()).
#include "image_io.h"

#include <jpeglib.h>
#include <png.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace lomit::app {
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

void check_size(const std::string& path, int width, int height, int size) {
  if (width != size || height != size)
    fail(path, "image is " + std::to_string(width) + "x" + std::to_string(height) +
                   ", the model translates " + std::to_string(size) + "x" + std::to_string(size) +
                   " images (resize it, or use `lomit-fast translate`, which resizes)");
}

RgbImage read_png(const std::string& path, int size) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str()))
    fail(path, std::string("cannot read PNG (") + png.message + ")");
  auto release = std::unique_ptr<png_image, void (*)(png_image*)>(&png, png_image_free);
  if (!(png.format & PNG_FORMAT_FLAG_COLOR))
    fail(path, "image is grayscale; lomit-translate-cpp takes RGB images");
  if (png.format & PNG_FORMAT_FLAG_ALPHA)
    fail(path, "image has an alpha channel (RGBA); lomit-translate-cpp takes RGB images");
  check_size(path, png.width, png.height, size);
  png.format = PNG_FORMAT_RGB;  // 16-bit and palette files are converted to 8-bit RGB
  RgbImage image{int(png.width), int(png.height), std::vector<uint8_t>(PNG_IMAGE_SIZE(png))};
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr))
    fail(path, std::string("cannot decode PNG (") + png.message + ")");
  release.release();  // finish_read freed it
  return image;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_throw(j_common_ptr info) {
  auto* err = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, err->message);
  std::longjmp(err->jump, 1);
}

// No object with a destructor is created between setjmp and a longjmp out of libjpeg.
RgbImage read_jpeg(const std::string& path, int size) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail(path, "cannot open file");
  jpeg_decompress_struct info;
  JpegError err;
  info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_throw;
  RgbImage image;
  std::string problem;
  if (setjmp(err.jump)) {
    problem = std::string("cannot decode JPEG (") + err.message + ")";
  } else {
    jpeg_create_decompress(&info);
    jpeg_stdio_src(&info, file);
    jpeg_read_header(&info, TRUE);
    if (info.num_components != 3) {
      problem = "image has " + std::to_string(info.num_components) +
                " channel(s) (grayscale or CMYK); lomit-translate-cpp takes RGB images";
    } else if (int(info.image_width) != size || int(info.image_height) != size) {
      problem = "size";
    } else {
      info.out_color_space = JCS_RGB;
      jpeg_start_decompress(&info);
      image.width = info.output_width, image.height = info.output_height;
      image.pixels.resize(size_t(image.width) * image.height * 3);
      while (info.output_scanline < info.output_height) {
        JSAMPROW row = image.pixels.data() + size_t(info.output_scanline) * image.width * 3;
        jpeg_read_scanlines(&info, &row, 1);
      }
      jpeg_finish_decompress(&info);
    }
  }
  const int width = info.image_width, height = info.image_height;
  jpeg_destroy_decompress(&info);
  std::fclose(file);
  if (problem == "size") check_size(path, width, height, size);
  if (!problem.empty()) fail(path, problem);
  return image;
}

void write_jpeg(const std::string& path, const RgbImage& image) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) fail(path, "cannot create file");
  jpeg_compress_struct info;
  JpegError err;
  info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_throw;
  bool ok = true;
  if (setjmp(err.jump)) {
    ok = false;
  } else {
    jpeg_create_compress(&info);
    jpeg_stdio_dest(&info, file);
    info.image_width = image.width, info.image_height = image.height;
    info.input_components = 3, info.in_color_space = JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, 95, TRUE);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
      JSAMPROW row = const_cast<uint8_t*>(image.pixels.data()) +
                     size_t(info.next_scanline) * image.width * 3;
      jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
  }
  jpeg_destroy_compress(&info);
  if (std::fclose(file) != 0 || !ok) fail(path, std::string("cannot write JPEG ") + err.message);
}

}  // namespace

bool is_image_file(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

RgbImage read_rgb(const std::string& path, int size) {
  const std::string ext = lower_extension(path);
  if (ext == ".png") return read_png(path, size);
  if (ext == ".jpg" || ext == ".jpeg") return read_jpeg(path, size);
  fail(path, "not a PNG or JPEG file (by its extension)");
}

void write_rgb(const std::string& path, const RgbImage& image) {
  // .<name>.<pid>-<n>.tmp: hidden, and unique to this process and call, so two programs writing
  // into one folder never share a temporary file.
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path target(path);
  const std::string tmp = (target.parent_path() /
                           ("." + target.filename().string() + "." + std::to_string(getpid()) +
                            "-" + std::to_string(counter++) + ".tmp")).string();
  try {
    if (lower_extension(path) == ".png") {
      png_image png;
      std::memset(&png, 0, sizeof png);
      png.version = PNG_IMAGE_VERSION;
      png.width = image.width, png.height = image.height, png.format = PNG_FORMAT_RGB;
      if (!png_image_write_to_file(&png, tmp.c_str(), 0, image.pixels.data(), 0, nullptr))
        fail(path, std::string("cannot write PNG (") + png.message + ")");
    } else {
      write_jpeg(tmp, image);
    }
    std::filesystem::rename(tmp, target);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

}  // namespace lomit::app
