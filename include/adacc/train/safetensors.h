// A small reader and writer of the safetensors format (the file format of Hugging Face
// model weights): an 8-byte little-endian length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the tensor bytes; offsets count from the start of the data.
//
// The reader validates the whole header when it opens a file (its length against the
// file size and the format's 100 MB limit, the JSON (at most kMaxJsonDepth deep, no key
// twice), every dtype, shape and offset range, overlaps) and throws a FormatError naming
// the file and the problem in one short line; a missing file is an InvalidArgument.
// Opening takes time linear in the header's size (plus sorting the tensors).
// The writer streams tensors through a bounded staging buffer (so that converting
// layouts, e.g. transposing, needs no copy of a whole tensor) and writes atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "adacc/core/tensor.h"

namespace adacc::train {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as in the file: "F32", "F16", "BF16", "I64", ...
  Shape shape;
  std::uint64_t begin = 0, end = 0;  // byte range relative to the data start
};

class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::filesystem::path& path);
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;
  ~SafetensorsReader();

  const std::filesystem::path& path() const { return path_; }
  // Every tensor, in the order of its data.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr.
  const SafetensorsTensor* find(std::string_view name) const;
  // The "__metadata__" entries (empty if the file has none).
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  // The metadata value of `key`, or nullptr.
  const std::string* metadata_value(std::string_view key) const;

  // Reads elements [first, first+count) of an F32 tensor into dst. FormatError if the
  // tensor is not F32 or the file ends early.
  void read_f32(const SafetensorsTensor& tensor, std::int64_t first, std::int64_t count,
                float* dst) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t data_start_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string_view, std::size_t> index_;  // name -> tensors_ index
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// One F32 tensor to write, given either as contiguous data or as a fill function.
struct SafetensorsOutput {
  std::string name;
  Shape shape;  // as stored
  // Contiguous row-major data of `shape`, or nullptr to use `fill`.
  const float* data = nullptr;
  // Writes elements [first, first+count) of the stored tensor to out. Called in order,
  // with whole rows of `shape`: first and count are multiples of the product of its
  // dims after the first.
  std::function<void(std::int64_t first, std::int64_t count, float* out)> fill;
};

// Writes `tensors` (F32, in the given order) and `metadata` to `path` atomically (see
// atomic_file.h). Throws InvalidArgument for duplicate or reserved names, BackendError
// if the OS fails.
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<SafetensorsOutput>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata);

}  // namespace adacc::train
