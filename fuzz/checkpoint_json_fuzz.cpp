// Fuzz target: a training checkpoint directory's checkpoint.json (read_checkpoint_config,
// load_checkpoint), beside valid model and optimizer files of the tiny model, then the
// loader state it restores (BatchLoader::set_state and a batch).
#include <cstdint>
#include <vector>

#include "adacc/core/allocator.h"
#include "adacc/model/param_set.h"
#include "adacc/train/checkpoint.h"
#include "adacc/train/data.h"
#include "adacc/train/safetensors.h"
#include "fuzz_support.h"

namespace {

using namespace adacc;

struct TinyRun {
  model::ModelConfig config = fuzz::tiny_config();
  Allocator alloc;
  model::ParamSet params{config, alloc, MemCategory::params, "params"};
  model::ParamSet m{config, alloc, MemCategory::optimizer, "adam_m"};
  model::ParamSet v{config, alloc, MemCategory::optimizer, "adam_v"};
  std::filesystem::path dir = fuzz::scratch_dir() / "checkpoint";

  // model-1.safetensors and optim-1.safetensors as save_checkpoint writes them.
  TinyRun() {
    std::filesystem::create_directories(dir);
    train::save_safetensors(dir / "model-1.safetensors", config, params);
    const std::int64_t n = config.num_parameters();
    train::write_safetensors(
        dir / "optim-1.safetensors",
        {{"m", {n}, m.flat.data<float>(), {}}, {"v", {n}, v.flat.data<float>(), {}}},
        {{"format", "pt"}});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static TinyRun run;
  fuzz::write_file(run.dir / "checkpoint.json", data, size);
  try {
    train::read_checkpoint_config(run.dir);
    const train::TrainingState state =
        train::load_checkpoint(run.dir, run.config, run.params, run.m, run.v);
    fuzz::require(state.step >= 0 && state.optimizer_steps >= 0);
    std::vector<std::int32_t> tokens(64);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>(i % 8);
    for (const auto shuffle : {train::Shuffle::off, train::Shuffle::on}) {
      train::BatchLoader loader(tokens, 2, 4, shuffle, 1);
      loader.set_state(state.loader);
      std::int32_t inputs[8], targets[8];
      loader.next(inputs, targets);
      loader.next(inputs, targets);
    }
  } catch (const Error& e) {
    fuzz::check_message(e);
  }
  return 0;
}
