// Causal attention on the CPU, flash form: the T x T probabilities never exist whole.
// The forward saves only the log-sum-exp of each query row, lse (B,H,T); the backward
// recomputes the probabilities tile by tile from q, k and lse.
//
// Each head (b,h) is one task on one thread (the thread owns that head's dq, dk, dv, so
// nothing races), with its q, k, v packed contiguously (attention_tile.h). Tiles are
// kBlock x kBlock; query and key blocks start at the same multiples of kBlock, so a key
// block is either fully visible to a query block, its diagonal block, or fully masked
// and skipped.
//   forward, per query block: for each visible key block, S = q k^T * scale, an online
//     softmax (running row max m and sum l; earlier partial outputs rescaled by
//     e^(m_old - m_new)), O += P V; finally out = O / l and lse = m + log(l).
//   backward (FlashAttention-2 order), per key block j, for each query block i >= j:
//     P = exp(S - lse), dV_j += P^T dO_i, dP = dO_i V_j^T, dS = P * (dP - D_i) with
//     D = rowsum(dO * out), dQ_i += dS K_j * scale, dK_j += dS^T Q_i * scale.
// The scale is folded into the packed q (so S = q_scaled k^T and dK = dS^T q_scaled) and
// into dq when it is added to dqkv.
#include <omp.h>

#include <algorithm>
#include <cmath>
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

// The forward's scratch on a context of `threads` threads, per thread: qt (the query
// blocks of T rows), kp, vp (T,hs), st (kBlock,kBlock), o (kBlock,hs), m, l (kBlock).
// None without heads or rows.
attn::ScratchSize forward_scratch(const Dims& d, int threads) {
  const int tasks = d.B * d.H;
  if (tasks == 0 || d.T == 0) return {};
  const std::int64_t th = static_cast<std::int64_t>(d.T) * d.hs;
  const std::int64_t tile = std::int64_t{kBlock} * kBlock;
  return {attn::head_threads(threads, tasks),
          Carver::size({attn::key_blocks_size(d.T, d.hs), th, th, tile, std::int64_t{kBlock} * d.hs,
                        kBlock, kBlock})};
}

// The backward's scratch, per thread: qs, kp (T,hs), kt, vt (the key and value blocks of
// T rows), dop, dq, dk, dv (T,hs), dd (T), s, dp (kBlock,kBlock). None without heads or
// rows.
attn::ScratchSize backward_scratch(const Dims& d, int threads) {
  const int tasks = d.B * d.H;
  if (tasks == 0 || d.T == 0) return {};
  const std::int64_t th = static_cast<std::int64_t>(d.T) * d.hs;
  const std::int64_t tht = attn::key_blocks_size(d.T, d.hs);
  const std::int64_t tile = std::int64_t{kBlock} * kBlock;
  return {attn::head_threads(threads, tasks),
          Carver::size({th, th, tht, tht, th, th, th, th, d.T, tile, tile})};
}

// qkv (B,T,3C) -> out (B,T,C), lse (B,H,T)
//
// A tile holds the transposed scores S^T (keys, queries): then the softmax statistics of
// the queries (max, sum) are element-wise maxima and sums of the tile's rows, whole
// vectors at a time, instead of one horizontal reduction per query row; and P = (S^T)^T
// costs nothing as the left operand of O += P V.
void attention_flash_forward(Context& ctx, const float* qkv, const Dims& d, float* out,
                             float* lse) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int T = d.T, C = d.C, H = d.H, hs = d.hs;
  const idx C3 = 3 * static_cast<idx>(C);
  const int tasks = d.B * H;
  const attn::ScratchSize size = forward_scratch(d, ctx.threads());
  if (size.threads == 0) return;  // no heads or no rows
  const std::int64_t th = static_cast<std::int64_t>(T) * hs;
  const std::int64_t tile = std::int64_t{kBlock} * kBlock;
  attn::ThreadScratch scratch(ctx, size, "attention_flash_forward.tiles");
#pragma omp parallel num_threads(size.threads)
  {
    Carver carve(scratch.slice(omp_get_thread_num()));
    float* qt = carve.take(attn::key_blocks_size(T, hs));  // (q*scale)^T in (hs,kBlock) blocks
    float* kp = carve.take(th);                            // (T,hs)
    float* vp = carve.take(th);                            // (T,hs)
    float* st = carve.take(tile);                          // (kBlock,kBlock) S^T, then P^T
    float* o = carve.take(std::int64_t{kBlock} * hs);      // (kBlock,hs) unnormalized output
    float* m = carve.take(kBlock);                         // (kBlock) running max per query
    float* l = carve.take(kBlock);                         // (kBlock) running sum per query
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < tasks; ++bh) {
      const int b = bh / H, h = bh % H;
      const float* q = qkv + static_cast<idx>(b) * T * C3 + static_cast<idx>(h) * hs;
      attn::pack_key_blocks(q, C3, T, hs, d.scale, qt);
      attn::pack_rows(q + C, C3, T, hs, 1.0f, kp);
      attn::pack_rows(q + 2 * static_cast<idx>(C), C3, T, hs, 1.0f, vp);
      for (int q0 = 0; q0 < T; q0 += kBlock) {
        const int qn = std::min(kBlock, T - q0);
        // Columns qn.. of a ragged last block are queries that do not exist: their q is 0,
        // their statistics are computed and never used, so every loop below runs over
        // whole kBlock-wide rows.
        std::fill(m, m + kBlock, kNegInf);
        std::fill(l, l + kBlock, 0.0f);
        std::fill(o, o + static_cast<idx>(qn) * hs, 0.0f);
        for (int k0 = 0; k0 <= q0; k0 += kBlock) {
          const int kn = std::min(kBlock, T - k0);
          const bool diagonal = k0 == q0;
          // S^T (kn,kBlock) = kp[k0:] (kn,hs) qt_block (hs,kBlock)
          tile_gemm(kn, kBlock, hs, kp + static_cast<idx>(k0) * hs, hs, 1,
                    attn::key_block(qt, q0, hs), kBlock, st, kBlock, false);
          if (diagonal) {  // key c is visible to query r when c <= r
            for (int c = 1; c < kn; ++c)
              std::fill(st + static_cast<idx>(c) * kBlock, st + static_cast<idx>(c) * kBlock + c,
                        kNegInf);
          }
          float mx[kBlock], corr[kBlock], sum[kBlock];
#pragma omp simd
          for (int r = 0; r < kBlock; ++r) mx[r] = m[r];
          for (int c = 0; c < kn; ++c) {
            const float* row = st + static_cast<idx>(c) * kBlock;
#pragma omp simd
            for (int r = 0; r < kBlock; ++r) mx[r] = row[r] > mx[r] ? row[r] : mx[r];
          }
          // e^(m_old - m_new): 0 on the first block (m_old = -inf, l and o still 0).
#pragma omp simd
          for (int r = 0; r < kBlock; ++r) {
            corr[r] = k0 == 0 ? 0.0f : attn::exp_approx(m[r] - mx[r]);
            sum[r] = 0.0f;
          }
          for (int c = 0; c < kn; ++c) {
            float* row = st + static_cast<idx>(c) * kBlock;
#pragma omp simd
            for (int r = 0; r < kBlock; ++r) {
              row[r] = attn::exp_approx(row[r] - mx[r]);
              sum[r] += row[r];
            }
          }
          if (diagonal) {
            // Exact zeros where masked. exp_approx(-inf) is 1.6e-38, which left sum
            // unchanged: sum >= 1, from the maximum's e^0.
            for (int c = 1; c < kn; ++c)
              std::fill(st + static_cast<idx>(c) * kBlock, st + static_cast<idx>(c) * kBlock + c,
                        0.0f);
          }
#pragma omp simd
          for (int r = 0; r < kBlock; ++r) {
            l[r] = l[r] * corr[r] + sum[r];
            m[r] = mx[r];
          }
          if (k0 != 0) {
            for (int r = 0; r < qn; ++r) {
              float* orow = o + static_cast<idx>(r) * hs;
              const float cr = corr[r];
#pragma omp simd
              for (int c = 0; c < hs; ++c) orow[c] *= cr;
            }
          }
          // O (qn,hs) += P (qn,kn) vp[k0:] (kn,hs), P(r,c) = st[c*kBlock + r]
          tile_gemm(qn, hs, kn, st, 1, kBlock, vp + static_cast<idx>(k0) * hs, hs, o, hs, true);
        }
        float* out_rows =
            out + (static_cast<idx>(b) * T + q0) * C + static_cast<idx>(h) * hs;  // (qn,hs), ld C
        float* lse_rows = lse + static_cast<idx>(bh) * T + q0;                    // (qn)
        for (int r = 0; r < qn; ++r) {
          const float inv = 1.0f / l[r];
          const float* orow = o + static_cast<idx>(r) * hs;
          float* dst = out_rows + static_cast<idx>(r) * C;
#pragma omp simd
          for (int c = 0; c < hs; ++c) dst[c] = orow[c] * inv;
          lse_rows[r] = m[r] + std::log(l[r]);
        }
      }
    }
  }
}

// dout (B,T,C), qkv (B,T,3C), out (B,T,C), lse (B,H,T) -> dqkv (B,T,3C) +=
void attention_flash_backward(Context& ctx, const float* dout, const float* qkv, const float* out,
                              const float* lse, const Dims& d, float* dqkv) {
  const int T = d.T, C = d.C, H = d.H, hs = d.hs;
  const idx C3 = 3 * static_cast<idx>(C);
  const int tasks = d.B * H;
  const attn::ScratchSize size = backward_scratch(d, ctx.threads());
  if (size.threads == 0) return;  // no heads or no rows
  const std::int64_t th = static_cast<std::int64_t>(T) * hs;
  const std::int64_t tht = attn::key_blocks_size(T, hs);
  const std::int64_t tile = std::int64_t{kBlock} * kBlock;
  attn::ThreadScratch scratch(ctx, size, "attention_flash_backward.tiles");
#pragma omp parallel num_threads(size.threads)
  {
    Carver carve(scratch.slice(omp_get_thread_num()));
    float* qs = carve.take(th);    // (T,hs) q * scale
    float* kp = carve.take(th);    // (T,hs)
    float* kt = carve.take(tht);   // k^T in (hs,kBlock) blocks
    float* vt = carve.take(tht);   // v^T in (hs,kBlock) blocks
    float* dop = carve.take(th);   // (T,hs) dout of this head
    float* dq = carve.take(th);    // (T,hs) dq / scale
    float* dk = carve.take(th);    // (T,hs)
    float* dv = carve.take(th);    // (T,hs)
    float* dd = carve.take(T);     // (T) D = rowsum(dO * O)
    float* s = carve.take(tile);   // (kBlock,kBlock) scores, then P
    float* dp = carve.take(tile);  // (kBlock,kBlock) dP, then dS
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < tasks; ++bh) {
      const int b = bh / H, h = bh % H;
      const float* q = qkv + static_cast<idx>(b) * T * C3 + static_cast<idx>(h) * hs;
      attn::pack_rows(q, C3, T, hs, d.scale, qs);
      attn::pack_rows(q + C, C3, T, hs, 1.0f, kp);
      attn::pack_key_blocks(q + C, C3, T, hs, 1.0f, kt);
      attn::pack_key_blocks(q + 2 * static_cast<idx>(C), C3, T, hs, 1.0f, vt);
      const idx head_off =
          static_cast<idx>(b) * T * C + static_cast<idx>(h) * hs;  // of (T,hs) in (B,T,C)
      attn::pack_rows(dout + head_off, C, T, hs, 1.0f, dop);
      for (int t = 0; t < T; ++t) {
        const float* orow = out + head_off + static_cast<idx>(t) * C;
        const float* drow = dop + static_cast<idx>(t) * hs;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < hs; ++c) sum += drow[c] * orow[c];
        dd[t] = sum;
      }
      std::fill(dq, dq + th, 0.0f);
      std::fill(dk, dk + th, 0.0f);
      std::fill(dv, dv + th, 0.0f);
      const float* lse_head = lse + static_cast<idx>(bh) * T;  // (T)
      for (int k0 = 0; k0 < T; k0 += kBlock) {
        const int kn = std::min(kBlock, T - k0);
        for (int q0 = k0; q0 < T; q0 += kBlock) {
          const int qn = std::min(kBlock, T - q0);
          const bool diagonal = k0 == q0;
          // S (qn,kn) = qs[q0:] (qn,hs) kt[:,k0:] (hs,kn); P = exp(S - lse), masked.
          tile_gemm(qn, kn, hs, qs + static_cast<idx>(q0) * hs, hs, 1, attn::key_block(kt, k0, hs),
                    kBlock, s, kBlock, false);
          for (int r = 0; r < qn; ++r) {
            float* row = s + static_cast<idx>(r) * kBlock;
            const int n = diagonal ? r + 1 : kn;
            const float li = lse_head[q0 + r];
#pragma omp simd
            for (int c = 0; c < n; ++c) row[c] = attn::exp_approx(row[c] - li);
            std::fill(row + n, row + kn, 0.0f);
          }
          const float* dob = dop + static_cast<idx>(q0) * hs;  // (qn,hs)
          // dV[k0:] (kn,hs) += P^T (kn,qn) dO[q0:] (qn,hs)
          tile_gemm(kn, hs, qn, s, 1, kBlock, dob, hs, dv + static_cast<idx>(k0) * hs, hs, true);
          // dP (qn,kn) = dO[q0:] (qn,hs) vt[:,k0:] (hs,kn)
          tile_gemm(qn, kn, hs, dob, hs, 1, attn::key_block(vt, k0, hs), kBlock, dp, kBlock, false);
          // dS = P * (dP - D); P is 0 where masked, so dS is too.
          for (int r = 0; r < qn; ++r) {
            const float* prow = s + static_cast<idx>(r) * kBlock;
            float* row = dp + static_cast<idx>(r) * kBlock;
            const float di = dd[q0 + r];
#pragma omp simd
            for (int c = 0; c < kn; ++c) row[c] = prow[c] * (row[c] - di);
          }
          // dQ[q0:] (qn,hs) += dS (qn,kn) K[k0:] (kn,hs)
          tile_gemm(qn, hs, kn, dp, kBlock, 1, kp + static_cast<idx>(k0) * hs, hs,
                    dq + static_cast<idx>(q0) * hs, hs, true);
          // dK[k0:] (kn,hs) += dS^T (kn,qn) qs[q0:] (qn,hs)
          tile_gemm(kn, hs, qn, dp, 1, kBlock, qs + static_cast<idx>(q0) * hs, hs,
                    dk + static_cast<idx>(k0) * hs, hs, true);
        }
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

void attention_flash_forward(Context& ctx, const Tensor& qkv, int heads, Tensor& out, Tensor& lse) {
  constexpr const char* op = "attention_flash_forward";
  const cpu::attn::Dims d = cpu::attn::check_qkv(op, qkv, heads);
  require_tensor(op, "out", out, {d.B, d.T, d.C});
  require_tensor(op, "lse", lse, {d.B, d.H, d.T});
  require_cpu(op, {&out, &lse});
  cpu::attention_flash_forward(ctx, qkv.data<float>(), d, out.data<float>(), lse.data<float>());
}

void attention_flash_backward(Context& ctx, const Tensor& dout, const Tensor& qkv,
                              const Tensor& out, const Tensor& lse, int heads, Tensor& dqkv) {
  constexpr const char* op = "attention_flash_backward";
  const cpu::attn::Dims d = cpu::attn::check_qkv(op, qkv, heads);
  require_tensor(op, "dout", dout, {d.B, d.T, d.C});
  require_tensor(op, "out", out, {d.B, d.T, d.C});
  require_tensor(op, "lse", lse, {d.B, d.H, d.T});
  require_tensor(op, "dqkv", dqkv, qkv.shape());
  require_cpu(op, {&dout, &out, &lse, &dqkv});
  cpu::attention_flash_backward(ctx, dout.data<float>(), qkv.data<float>(), out.data<float>(),
                                lse.data<float>(), d, dqkv.data<float>());
}

std::size_t attention_flash_forward_workspace_bytes(std::int64_t B, std::int64_t T, std::int64_t C,
                                                    int heads, int threads) {
  const cpu::attn::Dims d =
      cpu::attn::make_dims("attention_flash_forward_workspace_bytes", B, T, C, heads);
  return cpu::attn::ThreadScratch::accounted(cpu::forward_scratch(d, threads));
}

std::size_t attention_flash_backward_workspace_bytes(std::int64_t B, std::int64_t T, std::int64_t C,
                                                     int heads, int threads) {
  const cpu::attn::Dims d =
      cpu::attn::make_dims("attention_flash_backward_workspace_bytes", B, T, C, heads);
  return cpu::attn::ThreadScratch::accounted(cpu::backward_scratch(d, threads));
}

}  // namespace adacc::ops
