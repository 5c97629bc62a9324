// Codec accuracy under a plan, measured where it matters: on the step's parameter
// gradients. A plan's codecs never change the forward (it never reads a compressed
// tensor back, so the loss is keep-all's exactly); they perturb the backward, which reads
// decode(encode(x)) in place of each compressed x.
//
// The bound. Each codec documents its round-trip error (src/compress/*.cpp, tested in
// tests/compress/); runtime::measure_codecs measures it on this very step's activations:
// eps_i = ||decode(encode(x_i)) - x_i|| / ||x_i|| for each compressed tensor x_i (for a
// codec that stores a derived form, against that form computed exactly). To first order
// the gradients move by sum_i J_i (x_i' - x_i), so their relative error is about
// eps = max_i eps_i times the backward's amplification of a relative perturbation of its
// saved tensors. For these small GPT-2s that factor is below 1 (measured 0.29-0.65 for
// every plan of these tests: every codec, random plans, the compress baselines), so the
// tests require
//     eps / kBelow  <=  ||g_plan - g_keep|| / ||g_keep||  <=  kAbove * eps.
// The upper side fails when a codec is swapped for a lossier one (bf16 -> fp8 is 16x the
// error, int8 -> int4 17x) or the decoded values are wrong (a skipped decode gives errors
// of order 1); the lower side fails when a compressed tensor's decode is not what the
// backward reads (a tensor kept in full after all, or a less lossy codec in its place).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "adacc/runtime/codec_measurement.h"
#include "adacc/runtime/plan.h"
#include "reference/test_util.h"

namespace adacc::test {

inline constexpr double kAbove = 2.0;
inline constexpr double kBelow = 6.0;

// The largest round-trip error (relative L2) of the tensors `plan` compresses, each with
// its codec, measured on the activations of one keep-all step of `graph` on this batch.
// Every compressed tensor must be measured (a tensor the measurement skips fails).
inline double largest_round_trip_error(const model::StepGraph& graph, const model::ParamSet& params,
                                       Context& ctx, const Tensor& tokens, const Tensor& targets,
                                       const runtime::Plan& plan) {
  std::set<std::string> codecs;
  std::set<std::pair<model::TensorId, std::string>> wanted;
  for (std::size_t i = 0; i < plan.decisions.size(); ++i) {
    if (plan.decisions[i].policy != runtime::Policy::compress) continue;
    codecs.insert(plan.decisions[i].codec);
    wanted.emplace(static_cast<model::TensorId>(i), plan.decisions[i].codec);
  }
  const std::vector<runtime::CodecMeasurement> measured = runtime::measure_codecs(
      graph, params, ctx, tokens, targets, std::vector<std::string>(codecs.begin(), codecs.end()));
  double eps = 0;
  std::size_t found = 0;
  for (const runtime::CodecMeasurement& m : measured) {
    if (!wanted.count({m.tensor, m.codec})) continue;
    eps = std::max(eps, m.tensor_error);
    ++found;
  }
  EXPECT_EQ(found, wanted.size()) << plan.planner << ": compressed tensors left unmeasured";
  return eps;
}

// The gradients of a step under a compressing plan against keep-all's, within the
// bounds above of the largest round-trip error `eps` of the tensors it compresses.
inline void expect_gradients_within_codec_error(const Vec& got, const Vec& keep_all, double eps,
                                                const std::string& what) {
  const double err = rel_error(got, keep_all);
  EXPECT_GT(eps, 0.0) << what << ": the codecs were exact on these tensors";
  EXPECT_LE(err, kAbove * eps) << what << ": gradient error " << err
                               << " against a largest round-trip error of " << eps;
  EXPECT_GE(err, eps / kBelow) << what << ": gradient error " << err
                               << " against a largest round-trip error of " << eps;
}

}  // namespace adacc::test
