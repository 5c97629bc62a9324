// The training loop: data, model, optimizer, schedule, clipping, NaN/inf handling,
// validation, metrics, progress and checkpoints, with exact resume.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "adacc/core/allocator.h"
#include "adacc/core/tensor.h"
#include "adacc/model/step_graph.h"
#include "adacc/ops/attention.h"
#include "adacc/runtime/plan.h"
#include "adacc/train/data.h"
#include "adacc/train/lr_schedule.h"

namespace adacc::train {

// What the loop reports after each optimizer step, for progress displays.
struct StepReport {
  std::int64_t step = 0;   // 1-based number of the step just taken
  std::int64_t total = 0;  // steps of the whole run
  float loss = 0;
  float lr = 0;
  double grad_norm = 0;
  double ms = 0;                    // this step's wall time
  double tok_s = 0;                 // tokens per second of this step
  std::size_t peak_bytes = 0;       // the run's peak so far
  std::size_t step_peak_bytes = 0;  // this step's own peak (its batch, forward, backward, update)
  double elapsed_s = 0;             // since this run started
  bool skipped = false;             // NaN/inf: the update was skipped
};

struct ValReport {
  std::int64_t step = 0;
  float val_loss = 0;
};

struct TrainCallbacks {
  std::function<void(const StepReport&)> on_step;
  std::function<void(const ValReport&)> on_validation;
  std::function<void(const std::string&)> on_message;  // warnings and notices, one line each
  // When set and true (e.g. from a SIGINT handler), the loop stops after the current
  // step and saves a checkpoint.
  const std::atomic<bool>* interrupt = nullptr;
  // A test seam, unset by the program: called after each step's backward pass with the
  // 1-based step number and the flat gradient, before the NaN/inf check and clipping.
  // It may change the gradient (tests make a chosen step non-finite to exercise the
  // skipped-update path) or copy it (to check clipping and the update).
  std::function<void(std::int64_t step, Tensor& grads)> on_gradients;
};

inline constexpr const char* kDefaultModel = "L=4,C=256,H=4,V=256,T=256";

struct TrainOptions {
  // A name or L=..,C=..,H=..,V=..,T=..; empty: the shape of --init's file, or else
  // kDefaultModel. Given together with --init, the file must have this shape.
  std::string model;
  std::filesystem::path data;                 // text file or llm.c shard
  std::filesystem::path sentencepiece_model;  // optional BPE for text
  std::filesystem::path init;                 // llm.c checkpoint or safetensors
  std::filesystem::path resume;               // checkpoint directory to continue
  // Checkpoints and the final model; empty with `resume` set: the resumed directory.
  // Created and locked before anything else happens (train/run_directory.h); a new run
  // refuses a non-empty directory unless `overwrite`.
  std::filesystem::path out_dir;
  bool overwrite = false;         // a new run may replace out_dir's checkpoint
  std::filesystem::path metrics;  // JSONL, one object per step
  int batch = 16;
  int seq = 256;
  std::int64_t steps = 1000;
  float lr = 1e-3f;
  float min_lr_fraction = 0.1f;
  std::int64_t warmup = -1;  // -1: 2% of the steps
  ScheduleKind schedule = ScheduleKind::cosine;
  float weight_decay = 0.1f;
  float grad_clip = 1.0f;  // 0: off
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  Shuffle shuffle = Shuffle::on;
  std::uint64_t seed = 1337;
  int threads = 0;  // 0: all cores
  ops::AttentionKind attention = ops::AttentionKind::flash;
  // Hard cap on the bytes the engine may hold: "6GiB", or "30%" of the keep-everything
  // plan's peak above the fixed part (plan/policy.h); empty: no cap.
  std::string budget;
  // adacc or checkmate (chosen by the MILP from measured costs within the budget), a
  // baseline (none, full, selective, llmc, every-K, compress, compress-CODEC) or a plan
  // file (JSON).
  std::string policy = "none";
  // adacc: the largest relative gradient error a codec may cause on a tensor
  // (plan::kDefaultTolerance unless set; negative: the default).
  double tolerance = -1;
  // adacc and checkmate: costs from this profile file; empty: the cache, else profile now.
  std::filesystem::path profile;
  // Evolution of the plan while training (evolve/evolution.h): "on", "off", "auto" (on
  // with --policy adacc, off otherwise), or "monitor" (sample and log, never demote: a
  // frozen plan's violations counted). On: the codec monitor samples the compressed
  // tensors every `monitor_every` steps (and each of the first 10) and demotes a codec
  // that breaks the tolerance; the plan is re-solved and swapped in between steps.
  std::string evolve = "auto";
  // adacc and checkmate: CBC's limit per MILP solve, for the first plan and re-plans.
  double time_limit = 10;
  std::int64_t monitor_every = 50;
  // A file holding the budget (one line: 6GiB or 30%), read at every step boundary; a new
  // budget takes effect at the next step with a new plan, or is refused (training goes on
  // under the old one). Empty: none.
  std::filesystem::path budget_file;
  double val_fraction = 0.05;
  std::int64_t val_every = 100;  // steps; 0: only at the end
  int val_batches = 16;
  std::int64_t save_every = 0;   // steps; 0: only at the end (when out_dir is set)
  int max_bad_steps = 5;         // consecutive NaN/inf steps before stopping
  std::int64_t stop_after = -1;  // stop (and save) after this many steps of this run; -1: no
};

// Checks every option's range (a NaN, a beta of 1, a negative epsilon, ...) and throws an
// InvalidArgument naming the flag, its value and what it must be.
void check_train_options(const TrainOptions& options);

enum class StopReason : std::uint8_t {
  finished,     // all the steps were taken
  stop_after,   // --stop-after steps were taken
  interrupted,  // the interrupt flag was raised
};

struct TrainResult {
  std::int64_t steps = 0;  // optimizer steps taken in total (including resumed ones)
  float last_loss = 0;
  float val_loss = -1;  // final validation loss, -1 if there was no validation data
  double seconds = 0;
  std::size_t peak_bytes = 0;
  StopReason stop = StopReason::finished;
  std::filesystem::path out_dir;  // where checkpoints went (empty: nowhere)
  std::int64_t saved_step = -1;   // the step of the last checkpoint in out_dir, -1: none
};

// A training run as an object: the constructor does everything before the first step
// (run directory, model, budget and plan, data, memory, weights or checkpoint) and throws
// what `train` throws; run() takes the steps. Each step is: load batch, forward/backward,
// the after-backward hooks, NaN/inf check, clipping, update, log, validation, checkpoint,
// and (between steps, not after the last) the step-boundary hooks, where a hook may swap
// the plan or change the budget without touching weights, optimizer state, RNG or data
// order.
class Trainer {
 public:
  // Called with the trainer and the 1-based number of the step just taken.
  using StepHook = std::function<void(Trainer&, std::int64_t step)>;

  // Copies the options and callbacks (they may be temporaries).
  Trainer(const TrainOptions& options, const TrainCallbacks& callbacks = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  void add_after_backward(StepHook hook);
  void add_step_boundary(StepHook hook);

  TrainResult run();

  const model::StepGraph& graph() const;
  const runtime::Plan& plan() const;
  Allocator& allocator();
  std::int64_t step() const;  // steps taken so far (the resumed ones included)

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Runs training as the options say. Throws adacc errors with one-line messages. If
// training has to stop because of repeated NaN/inf, it throws NumericalError without
// saving the diverged state: the last checkpoint saved (or resumed from) stays as it is,
// and the message says where it is. Without --budget the budget is what the machine has
// (train/machine_memory.h), so a model that cannot fit is refused before any allocation.
TrainResult train(const TrainOptions& options, const TrainCallbacks& callbacks = {});

}  // namespace adacc::train
