// Causal attention on the CPU, naive form: the forward materializes and saves the
// probabilities P (B,H,T,T), the backward reads them back.
//
// Each head (b,h) is one task on one thread (so the thread owns that head's dq, dk, dv
// and nothing races), with its q, k, v packed contiguously (attention_tile.h). The
// forward walks blocks of kBlock query rows: the scores for keys 0..end of the block,
// tile by tile, written straight into P, a softmax in place (zeros above the diagonal),
// then out = P V. The backward, per query block: dP = dO V^T (workspace of one block of
// rows), dS = P * (dP - rowsum(dP * P)), dQ += dS K, dK += dS^T Q, dV += P^T dO, all
// with the scale 1/sqrt(hs) folded into the packed q and into dq.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "adacc/ops/attention.h"
#include "attention_tile.h"

namespace adacc::ops {
namespace cpu {
namespace {

using attn::Carver;
using attn::Dims;
using attn::idx;
using attn::kBlock;
using attn::tile_gemm;

// The forward's scratch on a context of `threads` threads, per thread: qs (T,hs), kt (the
// key blocks of T rows), vp (T,hs). None without heads or rows.
attn::ScratchSize forward_scratch(const Dims& d, int threads) {
  const int tasks = d.B * d.H;
  if (tasks == 0 || d.T == 0) return {};
  const std::int64_t th = static_cast<std::int64_t>(d.T) * d.hs;
  return {attn::head_threads(threads, tasks),
          Carver::size({th, attn::key_blocks_size(d.T, d.hs), th})};
}

// The backward's scratch, per thread: qs, kp (T,hs), vt (the value blocks of T rows), dop,
// dq, dk, dv (T,hs), dp (kBlock, padded_ld(T)). None without heads or rows.
attn::ScratchSize backward_scratch(const Dims& d, int threads) {
  const int tasks = d.B * d.H;
  if (tasks == 0 || d.T == 0) return {};
  const std::int64_t th = static_cast<std::int64_t>(d.T) * d.hs;
  const std::int64_t tile = std::int64_t{kBlock} * attn::padded_ld(d.T);
  return {attn::head_threads(threads, tasks),
          Carver::size({th, th, attn::key_blocks_size(d.T, d.hs), th, th, th, th, tile})};
}

// qkv (B,T,3C) -> out (B,T,C), probs (B,H,T,T)
void attention_naive_forward(Context& ctx, const float* qkv, const Dims& d, float* out,
                             float* probs) {
  const int T = d.T, C = d.C, H = d.H, hs = d.hs;
  const idx C3 = 3 * static_cast<idx>(C);
  const int tasks = d.B * H;
  const attn::ScratchSize size = forward_scratch(d, ctx.threads());
  if (size.threads == 0) return;  // no heads or no rows
  const std::int64_t th = static_cast<std::int64_t>(T) * hs;
  attn::ThreadScratch scratch(ctx, size, "attention_naive_forward.packs");
#pragma omp parallel num_threads(size.threads)
  {
    Carver carve(scratch.slice(omp_get_thread_num()));
    float* qs = carve.take(th);                            // (T,hs) q * scale
    float* kt = carve.take(attn::key_blocks_size(T, hs));  // k^T in (hs,kBlock) blocks
    float* vp = carve.take(th);                            // (T,hs)
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < tasks; ++bh) {
      const int b = bh / H, h = bh % H;
      const float* q = qkv + static_cast<idx>(b) * T * C3 + static_cast<idx>(h) * hs;
      attn::pack_rows(q, C3, T, hs, d.scale, qs);
      attn::pack_key_blocks(q + C, C3, T, hs, 1.0f, kt);
      attn::pack_rows(q + 2 * static_cast<idx>(C), C3, T, hs, 1.0f, vp);
      float* p = probs + static_cast<idx>(bh) * T * T;  // (T,T) of head (b,h)
      for (int q0 = 0; q0 < T; q0 += kBlock) {
        const int qn = std::min(kBlock, T - q0), q1 = q0 + qn;
        float* prow = p + static_cast<idx>(q0) * T;  // rows q0..q1-1 of P, (qn,T)
        // scores (qn,q1) = qs[q0:q1] (qn,hs) kt[:,0:q1] (hs,q1), one key block at a time
        for (int k0 = 0; k0 < q1; k0 += kBlock) {
          tile_gemm(qn, std::min(kBlock, T - k0), hs, qs + static_cast<idx>(q0) * hs, hs, 1,
                    attn::key_block(kt, k0, hs), kBlock, prow + k0, T, false);
        }
        for (int r = 0; r < qn; ++r) {
          float* row = prow + static_cast<idx>(r) * T;
          const int n = q0 + r + 1;  // keys 0..i
          const float mx = attn::row_max(row, n, -std::numeric_limits<float>::infinity());
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int c = 0; c < n; ++c) {
            row[c] = attn::exp_approx(row[c] - mx);
            sum += row[c];
          }
          const float inv = 1.0f / sum;
#pragma omp simd
          for (int c = 0; c < n; ++c) row[c] *= inv;
          std::fill(row + n, row + T, 0.0f);
        }
        // out rows (qn,hs) = P (qn,q1) vp[0:q1] (q1,hs)
        tile_gemm(qn, hs, q1, prow, T, 1, vp, hs,
                  out + (static_cast<idx>(b) * T + q0) * C + static_cast<idx>(h) * hs, C, false);
      }
    }
  }
}

// dout (B,T,C), qkv (B,T,3C), probs (B,H,T,T) -> dqkv (B,T,3C) +=
void attention_naive_backward(Context& ctx, const float* dout, const float* qkv, const float* probs,
                              const Dims& d, float* dqkv) {
  const int T = d.T, C = d.C, H = d.H, hs = d.hs, ldp = attn::padded_ld(T);
  const idx C3 = 3 * static_cast<idx>(C);
  const int tasks = d.B * H;
  const attn::ScratchSize size = backward_scratch(d, ctx.threads());
  if (size.threads == 0) return;  // no heads or no rows
  const std::int64_t th = static_cast<std::int64_t>(T) * hs;
  const std::int64_t tile = std::int64_t{kBlock} * ldp;
  attn::ThreadScratch scratch(ctx, size, "attention_naive_backward.packs");
#pragma omp parallel num_threads(size.threads)
  {
    Carver carve(scratch.slice(omp_get_thread_num()));
    float* qs = carve.take(th);                            // (T,hs) q * scale
    float* kp = carve.take(th);                            // (T,hs)
    float* vt = carve.take(attn::key_blocks_size(T, hs));  // v^T in (hs,kBlock) blocks
    float* dop = carve.take(th);                           // (T,hs) dout of this head
    float* dq = carve.take(th);                            // (T,hs) dq / scale
    float* dk = carve.take(th);                            // (T,hs)
    float* dv = carve.take(th);                            // (T,hs)
    float* dp = carve.take(tile);                          // (kBlock,ldp) dP, then dS
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < tasks; ++bh) {
      const int b = bh / H, h = bh % H;
      const float* q = qkv + static_cast<idx>(b) * T * C3 + static_cast<idx>(h) * hs;
      attn::pack_rows(q, C3, T, hs, d.scale, qs);
      attn::pack_rows(q + C, C3, T, hs, 1.0f, kp);
      attn::pack_key_blocks(q + 2 * static_cast<idx>(C), C3, T, hs, 1.0f, vt);
      attn::pack_rows(dout + static_cast<idx>(b) * T * C + static_cast<idx>(h) * hs, C, T, hs, 1.0f,
                      dop);
      std::fill(dq, dq + th, 0.0f);
      std::fill(dk, dk + th, 0.0f);
      std::fill(dv, dv + th, 0.0f);
      const float* p = probs + static_cast<idx>(bh) * T * T;  // (T,T) of head (b,h)
      for (int q0 = 0; q0 < T; q0 += kBlock) {
        const int qn = std::min(kBlock, T - q0), q1 = q0 + qn;
        const float* prow = p + static_cast<idx>(q0) * T;    // (qn,T)
        const float* dob = dop + static_cast<idx>(q0) * hs;  // (qn,hs)
        // dP (qn,q1) = dO[q0:q1] (qn,hs) vt[:,0:q1] (hs,q1), one key block at a time
        for (int k0 = 0; k0 < q1; k0 += kBlock) {
          tile_gemm(qn, std::min(kBlock, T - k0), hs, dob, hs, 1, attn::key_block(vt, k0, hs),
                    kBlock, dp + k0, ldp, false);
        }
        // dS = P * (dP - rowsum(dP * P)); zero above the diagonal.
        for (int r = 0; r < qn; ++r) {
          const float* prw = prow + static_cast<idx>(r) * T;
          float* row = dp + static_cast<idx>(r) * ldp;
          const int n = q0 + r + 1;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int c = 0; c < n; ++c) dot += row[c] * prw[c];
#pragma omp simd
          for (int c = 0; c < n; ++c) row[c] = prw[c] * (row[c] - dot);
          std::fill(row + n, row + q1, 0.0f);
        }
        // dV[0:q1] (q1,hs) += P^T (q1,qn) dO[q0:q1] (qn,hs)
        tile_gemm(q1, hs, qn, prow, 1, T, dob, hs, dv, hs, true);
        // dQ[q0:q1] (qn,hs) += dS (qn,q1) K[0:q1] (q1,hs)
        tile_gemm(qn, hs, q1, dp, ldp, 1, kp, hs, dq + static_cast<idx>(q0) * hs, hs, true);
        // dK[0:q1] (q1,hs) += dS^T (q1,qn) qs[q0:q1] (qn,hs)
        tile_gemm(q1, hs, qn, dp, 1, ldp, qs + static_cast<idx>(q0) * hs, hs, dk, hs, true);
      }
      float* g = dqkv + static_cast<idx>(b) * T * C3 + static_cast<idx>(h) * hs;
      attn::add_rows(dq, T, hs, d.scale, g, C3);
      attn::add_rows(dk, T, hs, 1.0f, g + C, C3);
      attn::add_rows(dv, T, hs, 1.0f, g + 2 * static_cast<idx>(C), C3);
    }
  }
}

}  // namespace
}  // namespace cpu

std::string_view attention_kind_name(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::naive:
      return "naive";
    case AttentionKind::flash:
      return "flash";
  }
  return "unknown";
}

AttentionKind attention_kind_from_name(std::string_view name, std::string_view what) {
  if (name == "naive") return AttentionKind::naive;
  if (name == "flash") return AttentionKind::flash;
  throw InvalidArgument(std::string(what) + " must be flash or naive, not '" + std::string(name) +
                        "'");
}

void attention_naive_forward(Context& ctx, const Tensor& qkv, int heads, Tensor& out,
                             Tensor& probs) {
  constexpr const char* op = "attention_naive_forward";
  const cpu::attn::Dims d = cpu::attn::check_qkv(op, qkv, heads);
  require_tensor(op, "out", out, {d.B, d.T, d.C});
  require_tensor(op, "probs", probs, {d.B, d.H, d.T, d.T});
  require_cpu(op, {&out, &probs});
  cpu::attention_naive_forward(ctx, qkv.data<float>(), d, out.data<float>(), probs.data<float>());
}

void attention_naive_backward(Context& ctx, const Tensor& dout, const Tensor& qkv,
                              const Tensor& probs, int heads, Tensor& dqkv) {
  constexpr const char* op = "attention_naive_backward";
  const cpu::attn::Dims d = cpu::attn::check_qkv(op, qkv, heads);
  require_tensor(op, "dout", dout, {d.B, d.T, d.C});
  require_tensor(op, "probs", probs, {d.B, d.H, d.T, d.T});
  require_tensor(op, "dqkv", dqkv, qkv.shape());
  require_cpu(op, {&dout, &probs, &dqkv});
  cpu::attention_naive_backward(ctx, dout.data<float>(), qkv.data<float>(), probs.data<float>(), d,
                                dqkv.data<float>());
}

std::size_t attention_naive_forward_workspace_bytes(std::int64_t B, std::int64_t T, std::int64_t C,
                                                    int heads, int threads) {
  const cpu::attn::Dims d =
      cpu::attn::make_dims("attention_naive_forward_workspace_bytes", B, T, C, heads);
  return cpu::attn::ThreadScratch::accounted(cpu::forward_scratch(d, threads));
}

std::size_t attention_naive_backward_workspace_bytes(std::int64_t B, std::int64_t T, std::int64_t C,
                                                     int heads, int threads) {
  const cpu::attn::Dims d =
      cpu::attn::make_dims("attention_naive_backward_workspace_bytes", B, T, C, heads);
  return cpu::attn::ThreadScratch::accounted(cpu::backward_scratch(d, threads));
}

}  // namespace adacc::ops
