// Fuzz target: --budget (plan::parse_budget: byte sizes with units, percentages) and the
// resolution of a percentage against a predicted peak.
#include <cmath>
#include <cstdint>
#include <string_view>

#include "adacc/core/byte_size.h"
#include "adacc/plan/policy.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace adacc;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const plan::Budget b = plan::parse_budget(text);
    if (!b.percent) {
      fuzz::require(b.bytes <= kMaxByteSize);
      return 0;
    }
    fuzz::require(b.share > 0 && std::isfinite(b.share));
    runtime::MemoryPrediction none;
    none.fixed = std::size_t{1} << 40;
    none.total_peak = none.fixed + (std::size_t{1} << 50);
    const std::size_t bytes = plan::resolve_budget(b, none);
    fuzz::require(bytes >= none.fixed && bytes <= kMaxByteSize);
  } catch (const Error& e) {
    fuzz::check_message(e);
  }
  return 0;
}
