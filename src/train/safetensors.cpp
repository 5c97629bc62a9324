// The safetensors reader and writer (see safetensors.h). The reader checks the header
// completely before anything is read, so that a corrupt file fails with a message
// naming the problem instead of reading garbage; tensor data is read with pread
// straight into the caller's memory.
#include "adacc/train/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "adacc/core/error.h"
#include "adacc/core/excerpt.h"
#include "adacc/core/json_input.h"
#include "adacc/train/atomic_file.h"

namespace adacc::train {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors is little-endian; adacc reads it with plain copies");

// The spec caps the header at 100 MB; a larger length means a corrupt file.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
// Dimensions of a tensor's shape; more means a corrupt file (PyTorch allows 64 too).
constexpr std::size_t kMaxDims = 64;
// Elements per staging buffer of the writer (1 MiB of f32).
constexpr std::int64_t kChunkElements = 1 << 18;

[[noreturn]] void format_error(const std::filesystem::path& path, const std::string& problem) {
  throw FormatError("[safetensors] '" + path.string() + "': " + problem);
}

// Bytes per element of each dtype the format defines; 0 for an unknown one.
std::uint64_t dtype_bytes(std::string_view dtype) {
  struct Entry {
    std::string_view name;
    std::uint64_t bytes;
  };
  static constexpr Entry kDtypes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8},
  };
  for (const Entry& e : kDtypes) {
    if (e.name == dtype) return e.bytes;
  }
  return 0;
}

using Json = nlohmann::ordered_json;

// shape_str, or for a shape of many dimensions (hostile files) only their count.
std::string short_shape_str(const Shape& shape) {
  return shape.size() <= 8 ? shape_str(shape) : std::to_string(shape.size()) + "-dimensional";
}

bool as_u64(const Json& j, std::uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<std::uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<std::int64_t>() >= 0) {
    out = static_cast<std::uint64_t>(j.get<std::int64_t>());
    return true;
  }
  return false;
}

// Parses one tensor entry of the header; `data_bytes` is the size of the data section.
SafetensorsTensor parse_entry(const std::filesystem::path& path, const std::string& name,
                              const Json& j, std::uint64_t data_bytes) {
  const std::string what = "tensor '" + excerpt(name) + "'";
  if (!j.is_object()) format_error(path, what + " is not a JSON object");
  SafetensorsTensor t;
  t.name = name;
  const auto dtype = j.find("dtype");
  if (dtype == j.end() || !dtype->is_string()) format_error(path, what + " has no dtype string");
  t.dtype = dtype->get<std::string>();
  const std::uint64_t elem = dtype_bytes(t.dtype);
  if (elem == 0) format_error(path, what + " has unknown dtype '" + excerpt(t.dtype) + "'");

  const auto shape = j.find("shape");
  if (shape == j.end() || !shape->is_array()) format_error(path, what + " has no shape array");
  if (shape->size() > kMaxDims) {
    format_error(path, what + " has " + std::to_string(shape->size()) +
                           " dimensions; adacc reads at most " + std::to_string(kMaxDims));
  }
  std::uint64_t numel = 1;
  for (const Json& d : *shape) {
    std::uint64_t n = 0;
    if (!as_u64(d, n) || n > static_cast<std::uint64_t>(INT64_MAX)) {
      format_error(path, what + " has a shape entry that is not a non-negative integer: " +
                             describe_json(d));
    }
    if (__builtin_mul_overflow(numel, n, &numel)) format_error(path, what + " is too large");
    t.shape.push_back(static_cast<std::int64_t>(n));
  }
  std::uint64_t expected_bytes = 0;
  if (__builtin_mul_overflow(numel, elem, &expected_bytes)) {
    format_error(path, what + " is too large");
  }

  const auto offsets = j.find("data_offsets");
  if (offsets == j.end() || !offsets->is_array() || offsets->size() != 2 ||
      !as_u64((*offsets)[0], t.begin) || !as_u64((*offsets)[1], t.end)) {
    format_error(path, what + " needs data_offsets [begin, end] of non-negative integers");
  }
  const std::string range =
      "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
  if (t.begin > t.end) format_error(path, what + " has " + range + " with begin > end");
  if (t.end > data_bytes) {
    format_error(path, what + " has " + range + " beyond the data section of " +
                           std::to_string(data_bytes) + " bytes (truncated file?)");
  }
  if (t.end - t.begin != expected_bytes) {
    format_error(path, what + " has " + range + " (" + std::to_string(t.end - t.begin) +
                           " bytes) but shape " + short_shape_str(t.shape) + " of " + t.dtype +
                           " needs " + std::to_string(expected_bytes) + " bytes");
  }
  return t;
}

// pread until `bytes` are read; false if the file ends first.
bool read_at(int fd, std::uint64_t offset, std::uint64_t bytes, void* dst, int& err) {
  char* out = static_cast<char*>(dst);
  while (bytes > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, 1u << 30));
    const ssize_t got = ::pread(fd, out, want, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    if (got == 0) {
      err = 0;
      return false;
    }
    out += got;
    offset += static_cast<std::uint64_t>(got);
    bytes -= static_cast<std::uint64_t>(got);
  }
  return true;
}

}  // namespace

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    if (err == ENOENT) throw InvalidArgument("[safetensors] no file '" + path.string() + "'");
    throw BackendError("[safetensors] cannot open '" + path.string() + "': " + std::strerror(err));
  }
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) format_error(path, "not a regular file");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < 8) {
      format_error(path, "file is " + std::to_string(size) +
                             " bytes, shorter than the 8-byte header length");
    }
    unsigned char len_bytes[8];
    int err = 0;
    if (!read_at(fd_, 0, 8, len_bytes, err)) format_error(path, "cannot read the header length");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = header_len << 8 | len_bytes[i];
    if (header_len > size - 8) {
      format_error(path, "header length " + std::to_string(header_len) +
                             " exceeds the file size (" + std::to_string(size) + " bytes)");
    }
    if (header_len > kMaxHeaderBytes) {
      format_error(path, "header length " + std::to_string(header_len) +
                             " exceeds the format's limit of 100 MB");
    }
    std::string header(static_cast<std::size_t>(header_len), '\0');
    if (!read_at(fd_, 8, header_len, header.data(), err)) format_error(path, "cannot read header");
    data_start_ = 8 + header_len;
    const std::uint64_t data_bytes = size - data_start_;

    Json j;
    try {
      j = parse_json_input(header, kMaxHeaderBytes, "the format's limit is 100 MB");
    } catch (const FormatError& e) {
      format_error(path, std::string("header: ") + e.what());
    }
    if (!j.is_object()) format_error(path, "header is not a JSON object");
    for (const auto& [key, value] : j.items()) {
      if (key == "__metadata__") {
        if (!value.is_object()) format_error(path, "__metadata__ is not a JSON object");
        for (const auto& [mk, mv] : value.items()) {
          if (!mv.is_string()) {
            format_error(path, "__metadata__ value of '" + excerpt(mk) + "' is " +
                                   describe_json(mv) + ", not a string");
          }
          metadata_.emplace_back(mk, mv.get<std::string>());
        }
        continue;
      }
      tensors_.push_back(parse_entry(path, key, value, data_bytes));
    }
    std::sort(tensors_.begin(), tensors_.end(),
              [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
                return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
              });
    for (std::size_t i = 1; i < tensors_.size(); ++i) {
      const SafetensorsTensor& a = tensors_[i - 1];
      const SafetensorsTensor& b = tensors_[i];
      // Empty tensors occupy no bytes and may share an offset with anything.
      if (a.end > b.begin && a.begin != a.end && b.begin != b.end) {
        format_error(path, "tensors '" + excerpt(a.name) + "' [" + std::to_string(a.begin) + ", " +
                               std::to_string(a.end) + "] and '" + excerpt(b.name) + "' [" +
                               std::to_string(b.begin) + ", " + std::to_string(b.end) +
                               "] overlap");
      }
    }
    index_.reserve(tensors_.size());
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

SafetensorsReader::~SafetensorsReader() {
  if (fd_ >= 0) ::close(fd_);
}

const SafetensorsTensor* SafetensorsReader::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const std::string* SafetensorsReader::metadata_value(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void SafetensorsReader::read_f32(const SafetensorsTensor& tensor, std::int64_t first,
                                 std::int64_t count, float* dst) const {
  if (tensor.dtype != "F32") {
    format_error(path_, "tensor '" + excerpt(tensor.name) + "' has dtype " + excerpt(tensor.dtype) +
                            "; adacc reads F32 only");
  }
  const auto numel = static_cast<std::int64_t>((tensor.end - tensor.begin) / 4);
  if (first < 0 || count < 0 || first + count > numel) {
    throw InvalidArgument("[safetensors] read of elements [" + std::to_string(first) + ", " +
                          std::to_string(first + count) + ") of tensor '" + excerpt(tensor.name) +
                          "' with " + std::to_string(numel) + " elements");
  }
  int err = 0;
  if (!read_at(fd_, data_start_ + tensor.begin + static_cast<std::uint64_t>(first) * 4,
               static_cast<std::uint64_t>(count) * 4, dst, err)) {
    format_error(path_, "cannot read tensor '" + excerpt(tensor.name) +
                            "': " + (err ? std::strerror(err) : "the file ends early"));
  }
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<SafetensorsOutput>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const SafetensorsOutput& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__" || !names.insert(t.name).second) {
      throw InvalidArgument("[safetensors] tensor name '" + t.name +
                            "' is empty, reserved or used twice");
    }
    const std::int64_t numel = shape_numel(t.shape);
    if (numel > 0 && t.data == nullptr && !t.fill) {
      throw InvalidArgument("[safetensors] tensor '" + t.name + "' has neither data nor fill");
    }
    const std::uint64_t bytes = static_cast<std::uint64_t>(numel) * 4;
    header[t.name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so that the data starts 8-byte aligned, as Python's writer does.
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicFile file(path);
  unsigned char len_bytes[8];
  std::uint64_t len = text.size();
  for (unsigned char& b : len_bytes) {
    b = static_cast<unsigned char>(len & 0xff);
    len >>= 8;
  }
  file.write(len_bytes, 8);
  file.write(text.data(), text.size());
  std::vector<float> staging;  // bounded: one chunk of whole rows
  for (const SafetensorsOutput& t : tensors) {
    const std::int64_t numel = shape_numel(t.shape);
    if (t.data != nullptr) {
      file.write(t.data, static_cast<std::size_t>(numel) * 4);
      continue;
    }
    const std::int64_t row = t.shape.size() > 1 ? numel / std::max<std::int64_t>(t.shape[0], 1) : 1;
    const std::int64_t chunk =
        std::max<std::int64_t>(kChunkElements / std::max<std::int64_t>(row, 1), 1) * row;
    staging.resize(static_cast<std::size_t>(std::min(chunk, numel)));
    for (std::int64_t first = 0; first < numel; first += chunk) {
      const std::int64_t count = std::min(chunk, numel - first);
      t.fill(first, count, staging.data());
      file.write(staging.data(), static_cast<std::size_t>(count) * 4);
    }
  }
  file.commit();
}

}  // namespace adacc::train
