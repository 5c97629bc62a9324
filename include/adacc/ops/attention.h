// Causal multi-head self-attention over a fused qkv tensor, in two forms.
//
//   qkv (B,T,3C): q = qkv[..., 0:C], k = qkv[..., C:2C], v = qkv[..., 2C:3C], each split
//   into H heads of hs = C/H channels (head h uses channels h*hs .. h*hs+hs-1).
//   scores = q k^T / sqrt(hs), masked causally (key index <= query index).
//   out (B,T,C) = softmax(scores) v, heads concatenated back along C.
//
// naive: saves the probabilities P (B,H,T,T) (entries above the diagonal are 0); the
//   backward uses them directly. Memory O(T^2), the probabilities are a compression
//   target.
// flash: tiled with an online softmax; saves only the log-sum-exp of each row,
//   lse (B,H,T), and recomputes the probabilities tile by tile in the backward, which
//   also needs the forward output. Memory O(T).
// Both backwards accumulate (+=) into dqkv (B,T,3C). Workspace comes from ctx's
// allocator (category workspace).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

enum class AttentionKind : std::uint8_t { naive, flash };

std::string_view attention_kind_name(AttentionKind kind);
// The kind named "naive" or "flash"; InvalidArgument otherwise, the message starting with
// `what` (e.g. "[train] --attention").
AttentionKind attention_kind_from_name(std::string_view name, std::string_view what);

void attention_naive_forward(Context& ctx, const Tensor& qkv, int heads, Tensor& out,
                             Tensor& probs);

void attention_naive_backward(Context& ctx, const Tensor& dout, const Tensor& qkv,
                              const Tensor& probs, int heads, Tensor& dqkv);

void attention_flash_forward(Context& ctx, const Tensor& qkv, int heads, Tensor& out, Tensor& lse);

void attention_flash_backward(Context& ctx, const Tensor& dout, const Tensor& qkv,
                              const Tensor& out, const Tensor& lse, int heads, Tensor& dqkv);

// Bytes the allocator accounts as workspace during one call of the function above of the
// same name, for qkv (B,T,3C), `heads` heads and a context of `threads` threads: one
// per-thread scratch buffer each, (min(threads, B*heads), floats per thread), none when
// B*heads or T is 0. heads must divide C (InvalidArgument otherwise).
std::size_t attention_naive_forward_workspace_bytes(std::int64_t B, std::int64_t T, std::int64_t C,
                                                    int heads, int threads);
std::size_t attention_naive_backward_workspace_bytes(std::int64_t B, std::int64_t T, std::int64_t C,
                                                     int heads, int threads);
std::size_t attention_flash_forward_workspace_bytes(std::int64_t B, std::int64_t T, std::int64_t C,
                                                    int heads, int threads);
std::size_t attention_flash_backward_workspace_bytes(std::int64_t B, std::int64_t T, std::int64_t C,
                                                     int heads, int threads);

}  // namespace adacc::ops
