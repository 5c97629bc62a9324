// Building blocks shared by the two CPU attention forms (attention_naive.cpp,
// attention_flash.cpp): argument checks, a vectorizable exp, a small tile matmul and the
// per-head packing of q, k, v.
//
// Both forms work one head (b,h) at a time on one thread, so a head's operands are first
// copied into contiguous per-thread buffers: in qkv a row of one head is hs floats every
// 3C floats, and with 3C*4 = 9216 bytes between rows (GPT-2) the rows of a 64-row tile
// fall into a few L1 sets and evict each other. The tile matmuls are hand-written
// register-blocked loops, not ops::sgemm, by measurement (2 cores of a Xeon with
// AVX-512, GCC 12, oneDNN 2.6): on packed 64x64x64 tiles they reach 158-174 GFLOP/s on
// one core against dnnl_sgemm's 147 (108-127 on unpacked qkv), and the flash kernels
// with sgemm in their place are 2-9% slower at T=256 and 1024, equal within noise at 64.
// A transposed left operand costs nothing here: its elements are broadcast one by one.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"
#include "adacc/ops/op_checks.h"
#include "adacc/ops/workspace.h"
#include "exp_cephes.h"

namespace adacc::ops::cpu::attn {

using idx = std::ptrdiff_t;

// Query rows and key columns per tile. One tile covers a whole T=64 sequence.
inline constexpr int kBlock = 64;

// Leading dimension for rows of t floats: whole 16-float vectors, plus one more vector so
// that rows are never 4 KiB apart (t = 1024), which would put them all in the same L1
// cache sets.
inline int padded_ld(int t) {
  return (t + 15) / 16 * 16 + 16;
}

// Sizes of one attention call: qkv (B,T,3C), H heads of hs = C/H channels.
struct Dims {
  int B = 0, T = 0, C = 0, H = 0, hs = 0;
  float scale = 1.0f;  // 1/sqrt(hs)
};

// The sizes of a call on qkv (B,T,3C) with `heads` heads; heads must divide C.
inline Dims make_dims(std::string_view op, std::int64_t B, std::int64_t T, std::int64_t C,
                      int heads) {
  require(B >= 0 && T >= 0 && C >= 0 && heads > 0 && C % heads == 0, op,
          "B=" + std::to_string(B) + ", T=" + std::to_string(T) + ", C=" + std::to_string(C) +
              ", heads=" + std::to_string(heads) +
              ": sizes must be >= 0 and heads > 0 must divide C");
  Dims d;
  d.B = static_cast<int>(B);
  d.T = static_cast<int>(T);
  d.C = static_cast<int>(C);
  d.H = heads;
  d.hs = d.C / heads;
  d.scale = 1.0f / std::sqrt(static_cast<float>(d.hs));
  return d;
}

// Checks qkv (B,T,3C) f32 on the cpu and heads dividing C; returns the sizes.
inline Dims check_qkv(std::string_view op, const Tensor& qkv, int heads) {
  require(qkv.defined(), op, "qkv is missing");
  require(qkv.dtype() == DType::f32 && qkv.ndim() == 3 && qkv.dim(2) % 3 == 0, op,
          "qkv must be (B,T,3C) f32 but is " + qkv.describe());
  require_cpu(op, {&qkv});
  const std::int64_t C = qkv.dim(2) / 3;
  require(heads > 0 && C % heads == 0, op,
          "C=" + std::to_string(C) + " (qkv " + shape_str(qkv.shape()) +
              ") is not divisible by heads=" + std::to_string(heads));
  return make_dims(op, qkv.dim(0), qkv.dim(1), C, heads);
}

// e^x (exp_cephes) with x clamped to [-87, 88], so e^x never overflows nor becomes
// denormal (e^-inf is 1.6e-38, not 0: callers zero masked entries themselves).
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  return exp_cephes(x);
}

// max(m, row[0..n)), vectorized (std::max returns a reference, which keeps GCC 12's
// omp simd reduction scalar).
inline float row_max(const float* row, int n, float m) {
#pragma omp simd reduction(max : m)
  for (int c = 0; c < n; ++c) m = row[c] > m ? row[c] : m;
  return m;
}

// The tile matmul c (M,N) = [c +] a (M,K) b (K,N). Element (i,k) of a is
// a[i*a_rs + k*a_cs], so a transposed a costs nothing; b and c are row-major with leading
// dimensions ldb, ldc. The micro-kernel keeps an R x W block of c in registers (W a
// multiple of the 16-float vector) while it walks K.
template <int R, int W>
inline void gemm_micro(int K, const float* __restrict a, idx a_rs, idx a_cs,
                       const float* __restrict b, idx ldb, float* __restrict c, idx ldc,
                       bool accumulate) {
  float acc[R][W];
  for (int r = 0; r < R; ++r) {
#pragma omp simd
    for (int w = 0; w < W; ++w) acc[r][w] = accumulate ? c[r * ldc + w] : 0.0f;
  }
  for (int k = 0; k < K; ++k) {
    const float* brow = b + k * ldb;
    for (int r = 0; r < R; ++r) {
      const float av = a[r * a_rs + k * a_cs];
#pragma omp simd
      for (int w = 0; w < W; ++w) acc[r][w] += av * brow[w];
    }
  }
  for (int r = 0; r < R; ++r) {
#pragma omp simd
    for (int w = 0; w < W; ++w) c[r * ldc + w] = acc[r][w];
  }
}

// Columns [0, W) of c for all M rows, R rows at a time.
template <int R, int W>
inline void gemm_columns(int M, int K, const float* a, idx a_rs, idx a_cs, const float* b, idx ldb,
                         float* c, idx ldc, bool accumulate) {
  int i = 0;
  for (; i + R <= M; i += R) {
    gemm_micro<R, W>(K, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc, accumulate);
  }
  for (; i < M; ++i) {
    gemm_micro<1, W>(K, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc, accumulate);
  }
}

// c (M,N) = [c +] a (M,K) b (K,N), as above, any N.
inline void tile_gemm(int M, int N, int K, const float* a, idx a_rs, idx a_cs, const float* b,
                      idx ldb, float* c, idx ldc, bool accumulate) {
  int j = 0;
  for (; j + 64 <= N; j += 64) {
    gemm_columns<4, 64>(M, K, a, a_rs, a_cs, b + j, ldb, c + j, ldc, accumulate);
  }
  for (; j + 32 <= N; j += 32) {
    gemm_columns<8, 32>(M, K, a, a_rs, a_cs, b + j, ldb, c + j, ldc, accumulate);
  }
  for (; j + 16 <= N; j += 16) {
    gemm_columns<8, 16>(M, K, a, a_rs, a_cs, b + j, ldb, c + j, ldc, accumulate);
  }
  if (j == N) return;
  // Fewer than 16 columns left (hs not a multiple of 16): accumulate in memory.
  const int n = N - j;
  for (int i = 0; i < M; ++i) {
    float* crow = c + i * ldc + j;
    if (!accumulate) std::fill(crow, crow + n, 0.0f);
    for (int k = 0; k < K; ++k) {
      const float av = a[i * a_rs + k * a_cs];
      const float* brow = b + k * ldb + j;
#pragma omp simd
      for (int w = 0; w < n; ++w) crow[w] += av * brow[w];
    }
  }
}

// The size of a ThreadScratch: `threads` slices of at least `floats` floats. threads = 0:
// the call has no work and allocates nothing.
struct ScratchSize {
  int threads = 0;
  std::int64_t floats = 0;
};

// Per-thread scratch: size.threads slices of at least size.floats floats, 64-byte
// aligned, from the allocator as workspace, (threads, stride) f32.
class ThreadScratch {
 public:
  ThreadScratch(Context& ctx, const ScratchSize& size, std::string_view name)
      : stride_(stride(size.floats)),
        tensor_(Tensor::empty(ctx.allocator(), shape(size), DType::f32, MemCategory::workspace,
                              name)) {}
  float* slice(int thread) const { return tensor_.data<float>() + thread * stride_; }

  // Bytes the allocator accounts for a ThreadScratch of this size (0 when threads = 0,
  // which callers do not construct).
  static std::size_t accounted(const ScratchSize& size) {
    return size.threads == 0 ? 0 : accounted_tensor_bytes(shape(size), DType::f32);
  }

 private:
  // Floats per slice: whole 16-float vectors, so every slice is 64-byte aligned.
  static std::int64_t stride(std::int64_t floats) {
    return (std::max<std::int64_t>(floats, 1) + 15) / 16 * 16;
  }
  static Shape shape(const ScratchSize& size) { return {size.threads, stride(size.floats)}; }

  std::int64_t stride_;
  Tensor tensor_;
};

// Carves consecutive 64-byte-aligned arrays out of one slice.
class Carver {
 public:
  explicit Carver(float* base) : next_(base) {}
  float* take(std::int64_t floats) {
    float* p = next_;
    next_ += (floats + 15) / 16 * 16;
    return p;
  }
  // How many floats take() of these sizes needs, for sizing a ThreadScratch.
  static std::int64_t size(std::initializer_list<std::int64_t> sizes) {
    std::int64_t total = 0;
    for (std::int64_t s : sizes) total += (s + 15) / 16 * 16;
    return total;
  }

 private:
  float* next_;
};

// Threads for `tasks` independent heads: the context's (`threads` = ctx.threads()), but no
// more than there are tasks.
inline int head_threads(int threads, int tasks) {
  return std::max(1, std::min(threads, tasks));
}

// src rows (n, hs) with leading dimension ld_src -> dst (n, hs) contiguous, times alpha.
inline void pack_rows(const float* src, idx ld_src, int n, int hs, float alpha, float* dst) {
  for (int t = 0; t < n; ++t) {
#pragma omp simd
    for (int d = 0; d < hs; ++d) dst[t * hs + d] = alpha * src[t * ld_src + d];
  }
}

// Floats of a pack_key_blocks of n rows of hs channels.
inline std::int64_t key_blocks_size(int n, int hs) {
  return std::int64_t{(n + kBlock - 1) / kBlock} * hs * kBlock;
}

// alpha * src rows (n, hs) with leading dimension ld_src -> their transpose, one block at
// a time: block j, (hs, kBlock) at dst + j*hs*kBlock, holds rows j*kBlock.. of src as its
// columns (columns past n are 0). With a leading dimension of kBlock, walking down a
// block's rows does not land on one cache set as a (hs, T) matrix with T = 1024 would.
inline void pack_key_blocks(const float* src, idx ld_src, int n, int hs, float alpha, float* dst) {
  constexpr int kChunk = 16;  // rows transposed together: full-vector stores
  for (int t0 = 0; t0 < n; t0 += kBlock) {
    float* block = dst + static_cast<idx>(t0 / kBlock) * hs * kBlock;
    for (int c0 = 0; c0 < kBlock; c0 += kChunk) {
      const int rows = std::clamp(n - t0 - c0, 0, kChunk);
      for (int d = 0; d < hs; ++d) {
        float* out = block + d * kBlock + c0;
        for (int c = 0; c < rows; ++c) out[c] = alpha * src[(t0 + c0 + c) * ld_src + d];
        for (int c = rows; c < kChunk; ++c) out[c] = 0.0f;
      }
    }
  }
}

// Block j of a pack_key_blocks, (hs, kBlock) with leading dimension kBlock.
inline const float* key_block(const float* packed, int k0, int hs) {
  return packed + static_cast<idx>(k0 / kBlock) * hs * kBlock;
}

// dst rows (n, hs) with leading dimension ld_dst += alpha * src (n, hs) contiguous.
inline void add_rows(const float* src, int n, int hs, float alpha, float* dst, idx ld_dst) {
  for (int t = 0; t < n; ++t) {
#pragma omp simd
    for (int d = 0; d < hs; ++d) dst[t * ld_dst + d] += alpha * src[t * hs + d];
  }
}

}  // namespace adacc::ops::cpu::attn
