// What a cost-based planner chooses by: for one step graph (one model shape, batch,
// thread count and attention kind), the time of every op's forward and backward and, for
// every saved activation, what each codec measured on it costs (time, bytes, error).
// The profiler (runtime/step_profile.h) measures them on the machine at hand; tests build
// them by hand. The cost model (plan/cost_model.h) prices a plan from them and the MILP
// planner (plan/milp_planner.h) minimizes that price under a memory budget.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace adacc::plan {

// One codec measured on one tensor.
struct CodecCost {
  std::string codec;              // a compress::codec_by_name name
  std::size_t encoded_bytes = 0;  // exact size of the encoded form (Codec::encoded_bytes)
  double encode_seconds = 0;      // once per step, in the forward
  double decode_seconds = 0;      // once per step, in the backward
  double grad_error = 0;          // runtime::CodecMeasurement::grad_error
  double tensor_error = 0;        // runtime::CodecMeasurement::tensor_error
};

struct StepCosts {
  // Indexed by op index (graph.ops()): wall seconds of the op's forward and backward.
  std::vector<double> forward_seconds;
  std::vector<double> backward_seconds;
  // Indexed by TensorId: the codecs measured on that tensor (empty for tensors no codec
  // was measured on: inputs, parameters, unsaved or non-recomputable activations).
  std::vector<std::vector<CodecCost>> codecs;

  // The keep-everything step: every forward and every backward once.
  double keep_all_seconds() const {
    double s = 0;
    for (double f : forward_seconds) s += f;
    for (double b : backward_seconds) s += b;
    return s;
  }
};

}  // namespace adacc::plan
