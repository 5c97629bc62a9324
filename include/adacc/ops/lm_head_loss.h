// Fused, chunked lm-head + softmax cross-entropy. The logits (B,T,Vp) are never
// materialized whole: rows are processed in chunks whose logits live in a small
// workspace (category workspace).
//
//   inp (B,T,C) (the final LayerNorm's output), wte (Vp,C) (tied to the token
//   embedding), targets (B,T) int32 in [0,V) -> losses (B,T), returns their mean.
//   logits[n,:] = inp[n,:] @ wte^T; only the first V of the Vp columns take part in the
//   softmax (padded rows of wte are never predicted).
//
// Because the loss is the last op, its gradient is known during the forward:
// lm_head_loss_forward_backward also computes, with dloss = dloss_scale for every
// position (1/(B*T) for the mean loss),
//   dinp (B,T,C) (overwritten) and dwte (Vp,C) (accumulated +=),
// so the backward needs no second pass over the vocabulary.
// Targets outside [0,V) throw InvalidArgument.
#pragma once

#include <cstddef>
#include <cstdint>

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

// Evaluation only: losses and their mean, no gradients.
float lm_head_loss_forward(Context& ctx, const Tensor& inp, const Tensor& wte,
                           const Tensor& targets, int vocab, Tensor& losses);

float lm_head_loss_forward_backward(Context& ctx, const Tensor& inp, const Tensor& wte,
                                    const Tensor& targets, int vocab, float dloss_scale,
                                    Tensor& losses, Tensor& dinp, Tensor& dwte);

// Bytes the allocator accounts as workspace during one lm_head_loss_forward or
// lm_head_loss_forward_backward (the same) on N = B*T rows with `vocab` classes: one
// logits chunk (min(N, 256), vocab rounded up to 16) f32, none when N = 0; any C, Vp and
// thread count.
std::size_t lm_head_loss_workspace_bytes(std::int64_t N, int vocab);

}  // namespace adacc::ops
