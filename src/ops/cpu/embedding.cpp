// Token + position embedding on the CPU: out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:].
//
// Forward is a gather, threaded over the B*T rows. Backward is a scatter-add into dwte,
// where two positions with the same token hit the same row. Instead of atomics or
// per-thread copies of the (Vp,C) table, each dwte row has one owner thread (token id
// modulo the team size) that adds its positions' gradients in row order, and each dwpe
// row belongs to one thread's block of positions; so writes never collide, whole rows
// stream contiguously, and every sum is taken in the same order for any thread count
// (bit-identical results). Splitting the channels among threads instead was measured
// slower than one thread: every thread then walks every row. Token ids are checked
// against [0,Vp) before any memory is touched.
#include "adacc/ops/embedding.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "adacc/ops/op_checks.h"

namespace adacc::ops {
namespace cpu {
namespace {

constexpr std::int64_t kParallelMin = 1 << 14;

// tokens (B,T), wte (Vp,C), wpe (>=T,C) -> out (B,T,C)
void embedding_forward(const std::int32_t* __restrict tokens, const float* __restrict wte,
                       const float* __restrict wpe, float* __restrict out, std::int64_t B,
                       std::int64_t T, std::int64_t C) {
  const std::int64_t N = B * T;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (std::int64_t n = 0; n < N; ++n) {
    const float* tok_row = wte + static_cast<std::int64_t>(tokens[n]) * C;  // (C)
    const float* pos_row = wpe + (n % T) * C;                               // (C)
    float* y = out + n * C;                                                 // (C)
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) y[c] = tok_row[c] + pos_row[c];
  }
}

// tokens (B,T), dout (B,T,C) -> dwte (Vp,C) +=, dwpe (>=T,C) +=
void embedding_backward(const std::int32_t* __restrict tokens, const float* __restrict dout,
                        float* __restrict dwte, float* __restrict dwpe, std::int64_t B,
                        std::int64_t T, std::int64_t C, int threads) {
  const std::int64_t N = B * T;
#pragma omp parallel num_threads(threads) if (N * C >= kParallelMin)
  {
    const int tid = omp_get_thread_num();
    const int team = omp_get_num_threads();
    // dwte: this thread owns the rows of the token ids equal to tid modulo team.
    for (std::int64_t n = 0; n < N; ++n) {
      if (tokens[n] % team != tid) continue;
      const float* g = dout + n * C;                                     // (C)
      float* tok_row = dwte + static_cast<std::int64_t>(tokens[n]) * C;  // (C)
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c) tok_row[c] += g[c];
    }
    // dwpe: this thread owns a contiguous block of positions.
    const std::int64_t t0 = T * tid / team;
    const std::int64_t t1 = T * (tid + 1) / team;
    for (std::int64_t t = t0; t < t1; ++t) {
      float* pos_row = dwpe + t * C;  // (C)
      for (std::int64_t b = 0; b < B; ++b) {
        const float* g = dout + (b * T + t) * C;  // (C)
#pragma omp simd
        for (std::int64_t c = 0; c < C; ++c) pos_row[c] += g[c];
      }
    }
  }
}

}  // namespace
}  // namespace cpu

namespace {

// tokens (B,T) int32, each in [0,Vp).
void require_tokens(const char* op, const Tensor& tokens, std::int64_t Vp) {
  require(tokens.defined(), op, "tokens is missing");
  require(tokens.ndim() == 2 && tokens.dtype() == DType::int32, op,
          "tokens must be (B,T) int32 but is " + tokens.describe());
  const std::int32_t* ids = tokens.data<std::int32_t>();
  const std::int64_t n = tokens.numel();
  std::int64_t bad = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= Vp) {
      bad = i;
      break;
    }
  }
  if (bad >= 0) {
    fail(op, "token id " + std::to_string(ids[bad]) + " at position " + std::to_string(bad) +
                 " of " + tokens.describe() + " is outside [0," + std::to_string(Vp) + ")");
  }
}

// table (rows,C) f32 with at least min_rows rows.
void require_table(const char* op, const char* what, const Tensor& table, std::int64_t min_rows,
                   std::int64_t C) {
  require(table.defined(), op, std::string(what) + " is missing");
  require(table.ndim() == 2 && table.dtype() == DType::f32 && table.dim(0) >= min_rows &&
              table.dim(1) == C,
          op,
          std::string(what) + " must be (>=" + std::to_string(min_rows) + "," + std::to_string(C) +
              ") f32 but is " + table.describe());
}

}  // namespace

void embedding_forward(Context& ctx, const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                       Tensor& out) {
  constexpr const char* op = "embedding_forward";
  require(wte.defined() && wte.ndim() == 2, op,
          "wte must be (Vp,C) but is " + (wte.defined() ? wte.describe() : "missing"));
  const std::int64_t Vp = wte.dim(0);
  const std::int64_t C = wte.dim(1);
  require_table(op, "wte", wte, 1, C);
  require_tokens(op, tokens, Vp);
  const std::int64_t B = tokens.dim(0);
  const std::int64_t T = tokens.dim(1);
  require_table(op, "wpe", wpe, T, C);
  require_tensor(op, "out", out, {B, T, C});
  require_cpu(op, {&tokens, &wte, &wpe, &out});
  cpu::embedding_forward(tokens.data<std::int32_t>(), wte.data<float>(), wpe.data<float>(),
                         out.data<float>(), B, T, C);
}

void embedding_backward(Context& ctx, const Tensor& tokens, const Tensor& dout, Tensor& dwte,
                        Tensor& dwpe) {
  constexpr const char* op = "embedding_backward";
  require(dwte.defined() && dwte.ndim() == 2, op,
          "dwte must be (Vp,C) but is " + (dwte.defined() ? dwte.describe() : "missing"));
  const std::int64_t Vp = dwte.dim(0);
  const std::int64_t C = dwte.dim(1);
  require_table(op, "dwte", dwte, 1, C);
  require_tokens(op, tokens, Vp);
  const std::int64_t B = tokens.dim(0);
  const std::int64_t T = tokens.dim(1);
  require_table(op, "dwpe", dwpe, T, C);
  require_tensor(op, "dout", dout, {B, T, C});
  require_cpu(op, {&tokens, &dout, &dwte, &dwpe});
  cpu::embedding_backward(tokens.data<std::int32_t>(), dout.data<float>(), dwte.data<float>(),
                          dwpe.data<float>(), B, T, C, ctx.threads());
}

}  // namespace adacc::ops
