// Single-precision matrix multiply, the engine's one dense-compute primitive.
//
// Row-major, BLAS semantics: C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C.
// On the CPU this is oneDNN's dnnl_sgemm, chosen by measurement (docs/matmul.md): it
// reaches full AVX-512 speed without any environment variable, unlike Debian's OpenBLAS.
#pragma once

#include <cstdint>

#include "adacc/core/context.h"

namespace adacc::ops {

enum class Trans : std::uint8_t { no, yes };

void sgemm(Context& ctx, Trans trans_a, Trans trans_b, std::int64_t M, std::int64_t N,
           std::int64_t K, float alpha, const float* A, std::int64_t lda, const float* B,
           std::int64_t ldb, float beta, float* C, std::int64_t ldc);

// FLOPs of one sgemm call (2*M*N*K), for rate reports.
inline double sgemm_flops(std::int64_t M, std::int64_t N, std::int64_t K) {
  return 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
}

}  // namespace adacc::ops
