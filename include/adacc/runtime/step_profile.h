// The step profiler: what one training step costs on the machine at hand, op by op and,
// for every saved activation, codec by codec — the measurements a cost-based planner
// chooses by (plan/profile_costs.h turns them into plan::StepCosts for a graph).
//
// Blocks of the same shape repeat, so the profiler measures a model of ONE block with the
// shape asked for (same C, H, V, maxT, batch, seq, threads and attention kind): the
// embedding, block 0 (ops and tensors named "h0.*"), the final LayerNorm and the head.
// A model of any depth is priced from it by name ("h0.fc" stands for every "h{l}.fc"),
// so profiling a 96-layer model needs neither its memory nor its time.
//
// What is measured (docs/profiling.md):
//   - every op's forward and backward wall time: StepExecutor's per-op timings of a
//     keep-everything step, the median over `steps` steps after `warmup` steps;
//   - for every saved, recomputable f32 activation and every codec meant for its role:
//     the exact encoded size (Codec::encoded_bytes), the tensor and gradient errors of
//     runtime::measure_codecs, and the encode and decode times on the step's real
//     activation, each the median of `codec_repeats` encodes and decodes. The errors need
//     a keep-everything step with every gradient held at once; when that does not fit the
//     budget, they are measured on the first batch/2, batch/4, ... sequences (the errors
//     are relative norms; `error_batch` records the batch used), sizes and times still on
//     the whole batch.
// Everything is allocated from one allocator whose budget is the request's: a profile
// that does not fit is PlanInfeasible, naming the bytes it needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "adacc/core/allocator.h"
#include "adacc/model/config.h"
#include "adacc/model/step_graph.h"

namespace adacc::runtime {

struct ProfileRequest {
  model::ModelConfig config;  // its shape; n_layer is ignored (one block is profiled)
  int batch = 4;
  int seq = 64;
  int threads = 1;  // as Context::resolve_threads (<= 0: every core)
  // Total bytes the profile may hold (parameters and gradients of the one-block model,
  // the batch, the step's activations, gradients, workspace and encoded tensors).
  std::size_t budget = Allocator::kUnlimited;
  std::uint64_t seed = 1337;  // GPT-2 initialisation of the weights, and random tokens
  // batch*seq+1 tokens of real data (tokens are [0, B*T), targets [1, B*T]); empty:
  // random tokens in [0, V) drawn from `seed`.
  std::vector<std::int32_t> data;
  int warmup = 1;                   // untimed steps first
  int steps = 5;                    // timed steps, median per op
  int codec_repeats = 5;            // encodes and decodes of each codec timed, median
  std::vector<std::string> codecs;  // names; empty: every registered codec
  // Called with a line of progress ("timing 5 steps", ...), when set.
  std::function<void(std::string_view)> progress;
};

struct ProfiledOp {
  std::string name;  // as in the one-block graph: "embed", "h0.fc", "lnf", "loss"
  std::string kind;  // OpNode::kind(): "linear", "attention", ...
  double forward_seconds = 0;
  double backward_seconds = 0;
};

struct ProfiledCodec {
  std::string codec;
  std::size_t encoded_bytes = 0;  // Codec::encoded_bytes of the tensor's shape
  double encode_seconds = 0;
  double decode_seconds = 0;
  double tensor_error = 0;        // CodecMeasurement's
  double grad_error = 0;          // CodecMeasurement's
  double weight_grad_error = -1;  // CodecMeasurement's (-1: the readers have no weights)
};

struct ProfiledTensor {
  std::string name;  // "h0.fc.out", "embed.out", "lnf.out"
  model::TensorRole role = model::TensorRole::residual;
  std::size_t bytes = 0;              // f32 bytes of the tensor
  std::vector<ProfiledCodec> codecs;  // in codec registry order
};

struct StepProfile {
  // What was measured: the shape (n_layer = 1), attention kind, batch, seq, threads.
  model::ModelConfig config;
  int batch = 0, seq = 0, threads = 0;
  // How.
  int warmup = 0, steps = 0, codec_repeats = 0;
  int error_batch = 0;  // sequences the codec errors were measured on (<= batch)
  std::uint64_t seed = 0;
  bool real_data = false;  // tokens from data (else random)
  std::size_t budget = Allocator::kUnlimited;
  std::size_t peak_bytes = 0;  // the allocator's peak while profiling
  double seconds = 0;          // wall time of the whole profile
  // The one-block graph's ops (in order) and saved recomputable f32 activations.
  std::vector<ProfiledOp> ops;
  std::vector<ProfiledTensor> tensors;

  // nullptr when absent.
  const ProfiledOp* find_op(std::string_view name) const;
  const ProfiledTensor* find_tensor(std::string_view name) const;
};

// The one-block model of `config`'s shape (n_layer = 1, the rest unchanged).
model::ModelConfig one_block_config(const model::ModelConfig& config);

// The name an op or tensor of a block in a deeper graph has in the one-block graph:
// "h7.fc.out" (layer 7) -> "h0.fc.out"; names outside the blocks (layer -1) are unchanged.
// Throws InvalidArgument if a block's name does not start with "h<layer>.".
std::string block_zero_name(std::string_view name, int layer);

// Whether measure_codecs measures this tensor: a saved, recomputable f32 activation
// (what a plan may compress). `saved` is saved_tensors(graph).
bool is_codec_candidate(const model::StepGraph& graph, const std::vector<bool>& saved,
                        model::TensorId id);

// The bytes profiling starts with and the least it needs: the one-block model's
// parameters and gradients, the batch, and the keep-everything step's predicted peak on
// top (the memory model's); the codec measurements need more (every gradient at once).
std::size_t profile_bytes_lower_bound(const ProfileRequest& request);

// Measures (see above). Throws PlanInfeasible naming the bytes needed when the budget is
// too small, InvalidArgument for a bad request (sizes, data tokens outside V, unknown codec).
StepProfile profile_step(const ProfileRequest& request);

}  // namespace adacc::runtime
