// Token + position embedding.
//   tokens (B,T) int32, wte (Vp,C), wpe (maxT,C) -> out (B,T,C)
//   out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]
// Backward accumulates (+=) into dwte and dwpe. Token ids outside [0,Vp) throw.
#pragma once

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

void embedding_forward(Context& ctx, const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                       Tensor& out);

void embedding_backward(Context& ctx, const Tensor& tokens, const Tensor& dout, Tensor& dwte,
                        Tensor& dwpe);

}  // namespace adacc::ops
