// Model files and training checkpoints.
//
//  - safetensors with Hugging Face GPT-2 names (transformer.wte.weight,
//    transformer.h.0.attn.c_attn.weight, ...): Hugging Face stores the four Conv1D
//    weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) as (in, out), i.e.
//    transposed relative to adacc's (out, in), and wte with V rows (not Vp); export and
//    import convert, so the file loads in transformers' GPT2LMHeadModel. The model config
//    travels in the safetensors metadata ("adacc.config": "L=..,C=..,H=..,V=..,T=..").
//  - llm.c fp32 GPT-2 checkpoints (header of 256 int32: magic 20240326, version 3,
//    maxT, V, L, H, C, Vp; then the parameters in llm.c's order): import only.
//  - A training checkpoint directory DIR: the model, the optimizer moments and a JSON
//    state (step, RNG state, data loader position, the run's options), so that a
//    resumed run continues bit-exactly. Every file is written to a temporary name,
//    fsync'ed and renamed; the JSON that names the current files is written last, so an
//    interrupted save leaves the previous checkpoint intact.
// Corrupt or truncated files give a FormatError naming the file and what is wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "adacc/core/rng.h"
#include "adacc/model/config.h"
#include "adacc/model/param_set.h"
#include "adacc/train/data.h"

namespace adacc::train {

// Writes params as safetensors (atomically).
void save_safetensors(const std::filesystem::path& path, const model::ModelConfig& config,
                      const model::ParamSet& params);

// The model config stored in a safetensors file written by save_safetensors, or in an
// llm.c checkpoint's header; the format is detected by content. A safetensors file
// without "adacc.config" (Hugging Face's) gives a config inferred from its shapes: L
// from the highest h.N, V and C from wte, T from wpe; H cannot be inferred and is taken
// as C/64 (GPT-2's head size in every published size; 1 if 64 does not divide C).
model::ModelConfig read_model_config(const std::filesystem::path& path);

// Loads parameters from a safetensors file (ours or Hugging Face's GPT-2) or an llm.c
// checkpoint into `params`, whose shapes come from `config`. A file of another shape
// gives a FormatError naming the tensor, the expected and the found shape. Names with
// or without the "transformer." prefix are accepted; extra tensors (attention masks,
// lm_head.weight) are ignored, but not layers beyond L. The padded wte rows are set to
// 0. Every name and shape is checked before `params` is written. A missing file is an
// InvalidArgument.
void load_parameters(const std::filesystem::path& path, const model::ModelConfig& config,
                     model::ParamSet& params);

// Everything besides the parameters that a resumed run needs.
struct TrainingState {
  std::int64_t step = 0;  // training steps taken
  // AdamW updates taken (fewer than `step` when NaN/inf steps were skipped); -1: `step`.
  std::int64_t optimizer_steps = -1;
  Rng::State rng{};
  BatchLoader::State loader{};
  // The run's options, to check a resume against; stored in checkpoint.json as JSON
  // when it is compact JSON (nlohmann's dump()), otherwise as a string, so that it
  // comes back exactly.
  std::string options_json;
  // The plan in force (plan/plan_io.h's JSON) and the evolution's state (the budget in
  // force and the demoted codecs), when the run evolves its plan; empty otherwise.
  std::string plan_json;
  std::string evolve_json;
};

// Saves a training checkpoint into directory `dir` (created if missing):
// model-<step>.safetensors (as save_safetensors), optim-<step>.safetensors (tensors "m"
// and "v", flat), then checkpoint.json naming them. After that, the two files that the
// previous checkpoint.json named, and temporary files of interrupted saves
// (<name>.tmp-<pid>), are deleted; nothing else is: a user's file named like a
// checkpoint file stays. A failing save (BackendError) removes what it wrote and leaves
// the previous checkpoint in place. One writer per directory (train/run_directory.h).
void save_checkpoint(const std::filesystem::path& dir, const model::ModelConfig& config,
                     const model::ParamSet& params, const model::ParamSet& adam_m,
                     const model::ParamSet& adam_v, const TrainingState& state);

// Finishes what writes killed mid-way left in a run directory: the files a save's
// journal names that the current checkpoint.json does not (a partial save's output, or
// the checkpoint it replaced), then the journal, and the temporary files
// (<name>.tmp-<pid>) of checkpoint files, the journal and the final model.safetensors.
// Only the directory's one writer (train/run_directory.h) may call it.
void remove_interrupted_writes(const std::filesystem::path& dir);

// The config of the checkpoint in `dir`.
model::ModelConfig read_checkpoint_config(const std::filesystem::path& dir);

// The state recorded in `dir`'s checkpoint.json (step, RNG, loader, options), without
// reading the model files.
TrainingState read_checkpoint_state(const std::filesystem::path& dir);

// Loads a checkpoint saved by save_checkpoint; the ParamSets must have the config's
// shapes. A missing directory or checkpoint.json is an InvalidArgument; a corrupt
// checkpoint.json (also: over 16 MiB, JSON nested deeper than kMaxJsonDepth, a key given
// twice), a file it names that is missing or corrupt, or a checkpoint of another model is
// a FormatError naming the file, in one short line. Reading is linear in the file sizes.
TrainingState load_checkpoint(const std::filesystem::path& dir, const model::ModelConfig& config,
                              model::ParamSet& params, model::ParamSet& adam_m,
                              model::ParamSet& adam_v);

}  // namespace adacc::train
