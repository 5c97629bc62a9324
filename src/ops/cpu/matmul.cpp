// sgemm on the CPU through oneDNN (see matmul.h and docs/matmul.md).
#include "adacc/ops/matmul.h"

#include <oneapi/dnnl/dnnl.h>

#include <string>

#include "adacc/core/error.h"

namespace adacc::ops {

void sgemm(Context& ctx, Trans trans_a, Trans trans_b, std::int64_t M, std::int64_t N,
           std::int64_t K, float alpha, const float* A, std::int64_t lda, const float* B,
           std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  if (M == 0 || N == 0) return;
  const dnnl_status_t status =
      dnnl_sgemm(trans_a == Trans::yes ? 'T' : 'N', trans_b == Trans::yes ? 'T' : 'N', M, N, K,
                 alpha, A, lda, B, ldb, beta, C, ldc);
  if (status != dnnl_success) {
    throw BackendError("[sgemm] oneDNN dnnl_sgemm failed with status " +
                       std::to_string(static_cast<int>(status)) + " for M=" + std::to_string(M) +
                       " N=" + std::to_string(N) + " K=" + std::to_string(K));
  }
}

}  // namespace adacc::ops
