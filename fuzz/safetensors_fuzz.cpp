// Fuzz target: the safetensors reader (SafetensorsReader on a file): the header's length,
// JSON, dtypes, shapes, offsets, overlaps, metadata, and reads of the tensors' first and
// last elements.
#include <algorithm>
#include <cstdint>

#include "adacc/train/safetensors.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace adacc;
  static const std::filesystem::path path = fuzz::scratch_dir() / "input.safetensors";
  fuzz::write_file(path, data, size);
  try {
    const train::SafetensorsReader r(path);
    std::uint64_t last_end = 0;
    for (const train::SafetensorsTensor& t : r.tensors()) {
      fuzz::require(t.begin <= t.end && t.begin >= std::min(last_end, t.begin));
      fuzz::require(r.find(t.name) == &t);
      if (t.begin != t.end) last_end = t.end;
      if (t.dtype != "F32") continue;
      const auto numel = static_cast<std::int64_t>((t.end - t.begin) / 4);
      float buf[16];
      const std::int64_t n = std::min<std::int64_t>(numel, 16);
      r.read_f32(t, 0, n, buf);
      r.read_f32(t, numel - n, n, buf);
    }
    for (const auto& [key, value] : r.metadata()) fuzz::require(r.metadata_value(key) != nullptr);
  } catch (const Error& e) {
    fuzz::check_message(e);
  }
  return 0;
}
