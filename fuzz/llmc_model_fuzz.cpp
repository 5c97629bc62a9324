// Fuzz target: model files as --init reads them (read_model_config, load_parameters):
// llm.c checkpoints (the 256-int header, the parameter count against the file size, the
// body), and, detected by content, safetensors model files (names, shapes, layouts).
#include <cstdint>

#include "adacc/core/allocator.h"
#include "adacc/model/param_set.h"
#include "adacc/train/checkpoint.h"
#include "fuzz_support.h"

namespace {

// Loads `path` into a fresh ParamSet of `config` when that is small enough to allocate.
void load_into(const std::filesystem::path& path, const adacc::model::ModelConfig& config) {
  if (config.num_parameters() > (1 << 20)) return;
  adacc::Allocator alloc;
  adacc::model::ParamSet params(config, alloc, adacc::MemCategory::params, "params");
  adacc::train::load_parameters(path, config, params);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace adacc;
  static const std::filesystem::path path = fuzz::scratch_dir() / "model.bin";
  static const model::ModelConfig tiny = fuzz::tiny_config();
  fuzz::write_file(path, data, size);
  try {
    const model::ModelConfig config = train::read_model_config(path);
    try {
      config.validate();  // what the reader returns is a valid config
    } catch (...) {
      fuzz::require(false);
    }
    load_into(path, config);
  } catch (const Error& e) {
    fuzz::check_message(e);
  }
  try {
    load_into(path, tiny);  // the checks against a model of another shape
  } catch (const Error& e) {
    fuzz::check_message(e);
  }
  return 0;
}
