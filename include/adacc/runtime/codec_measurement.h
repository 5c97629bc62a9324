// What each codec does to the real activations of a training step: for every saved
// activation and every codec meant for its role, the compression ratio, the round-trip
// error of the tensor, the error it causes in the gradients computed from it (one backward
// of each op that saves it, with and without the codec), and the encode / decode times.
// These are the measured costs that docs/codecs.md tabulates and planners rank codecs by.
#pragma once

#include <string>
#include <vector>

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"
#include "adacc/model/param_set.h"
#include "adacc/model/step_graph.h"

namespace adacc::runtime {

struct CodecMeasurement {
  model::TensorId tensor = model::kNoTensor;
  std::string codec;
  double ratio = 0;               // f32 bytes / encoded bytes
  double tensor_error = 0;        // ||x' - x|| / ||x|| (x: the tensor, or for codecs that store a
                                  // derived form, that form computed exactly, e.g. gelu'(x))
  double grad_error = 0;          // ||g' - g|| / ||g|| over every gradient (inputs and parameters)
                                  // the backward of the ops that save the tensor writes
  double weight_grad_error = -1;  // the same over parameter gradients only (-1: none)
  double encode_seconds = 0, decode_seconds = 0;
};

// Runs one forward and backward of `graph` with `params` on (tokens, targets), keeping every
// tensor and gradient, then measures each saved f32 activation (recomputable ones, i.e. the
// ones a plan could compress) with each codec of `codecs` (empty: every registered codec)
// that applies to its role. Results in tensor order, then codec order.
std::vector<CodecMeasurement> measure_codecs(const model::StepGraph& graph,
                                             const model::ParamSet& params, Context& ctx,
                                             const Tensor& tokens, const Tensor& targets,
                                             const std::vector<std::string>& codecs = {});

}  // namespace adacc::runtime
