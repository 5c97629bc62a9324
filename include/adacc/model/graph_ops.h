// The op nodes of the step graph: each adapts one op of ops/ to the graph, declaring
// which tensors it reads, writes and saves for its backward.
#pragma once

#include <memory>

#include "adacc/model/step_graph.h"
#include "adacc/ops/attention.h"

namespace adacc::model {

// tokens (B,T) int32, wte (Vp,C), wpe (maxT,C) -> out (B,T,C). Saves tokens.
std::unique_ptr<OpNode> make_embedding(std::string name, TensorId tokens, TensorId wte,
                                       TensorId wpe, TensorId out);

// inp (B,T,C), w (C), b (C) -> out (B,T,C), mean (B,T), rstd (B,T). Saves inp, mean, rstd.
std::unique_ptr<OpNode> make_layernorm(std::string name, int layer, const StepGraph& graph,
                                       TensorId inp, TensorId w, TensorId b, TensorId out,
                                       TensorId mean, TensorId rstd);

// inp (N,IC), w (OC,IC), b (OC) -> out (N,OC). Saves inp. flops from the shapes.
std::unique_ptr<OpNode> make_linear(std::string name, int layer, const StepGraph& graph,
                                    TensorId inp, TensorId w, TensorId b, TensorId out);

// qkv (B,T,3C) -> out (B,T,C) and probs (B,H,T,T) (naive) or lse (B,H,T) (flash).
// Saves qkv and probs (naive) or qkv, out and lse (flash).
std::unique_ptr<OpNode> make_attention(std::string name, int layer, const StepGraph& graph,
                                       ops::AttentionKind kind, int heads, TensorId qkv,
                                       TensorId out, TensorId stats);

// inp -> out, same shape. Saves inp.
std::unique_ptr<OpNode> make_gelu(std::string name, int layer, TensorId inp, TensorId out);

// a + b -> out. Saves nothing.
std::unique_ptr<OpNode> make_residual(std::string name, int layer, TensorId a, TensorId b,
                                      TensorId out);

// inp (B,T,C), wte (Vp,C), targets (B,T) -> losses (B,T) and, when training,
// loss_grad (B,T,C) = dloss/dinp and dwte (computed in the forward: the fused lm-head).
// Saves loss_grad.
std::unique_ptr<OpNode> make_lm_head_loss(std::string name, const StepGraph& graph, int vocab,
                                          TensorId inp, TensorId wte, TensorId targets,
                                          TensorId losses, TensorId loss_grad);

}  // namespace adacc::model
