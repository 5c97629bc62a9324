// Fused, chunked lm-head + softmax cross-entropy on the CPU (see lm_head_loss.h).
//
// The (N,Vp) logits of a whole batch would be the largest buffer of a step (N=4096 rows of
// GPT-2's vocabulary are 824 MB), yet each row is only needed long enough to turn it into
// a loss and a gradient. So rows are processed in chunks of R rows whose logits (R,V)
// live in one workspace buffer: three sgemms per chunk do the matmul work, and a threaded,
// vectorized softmax in between turns the logits into dlogits in place. Only the first V
// of the Vp columns are ever computed (wte's padded rows are never predicted), which also
// leaves the padded rows of dwte untouched.
#include "adacc/ops/lm_head_loss.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "adacc/ops/matmul.h"
#include "adacc/ops/op_checks.h"
#include "adacc/ops/workspace.h"
#include "exp_cephes.h"

namespace adacc::ops::cpu {

namespace {

constexpr std::string_view kOp = "lm_head_loss";

// e^x (exp_cephes), 0 for inputs below -87.3 (subnormal results); inputs must stay below
// 88 (this kernel only passes x <= 0). The final select works on bits, because float
// selects do not vectorize under GCC's default -ftrapping-math.
inline float exp_approx(float x) {
  constexpr float kMin = -87.3f;
  const float e = exp_cephes(std::max(x, kMin));
  const std::int32_t keep = x >= kMin ? -1 : 0;
  return std::bit_cast<float>(std::bit_cast<std::int32_t>(e) & keep);
}

enum class Mode : std::uint8_t { eval, train };

// One row of logits (V) with its target -> its loss. In train mode the row is replaced
// by dlogits = (softmax - onehot(target)) * dloss_scale.
template <Mode mode>
double softmax_xent_row(float* row, std::int64_t V, std::int32_t target, float dloss_scale) {
  float mx = -std::numeric_limits<float>::infinity();
  // (a plain select: GCC does not vectorize the std::max form of this reduction)
#pragma omp simd reduction(max : mx)
  for (std::int64_t v = 0; v < V; ++v) mx = row[v] > mx ? row[v] : mx;
  const float target_logit = row[target];
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t v = 0; v < V; ++v) {
    const float e = exp_approx(row[v] - mx);
    if constexpr (mode == Mode::train) row[v] = e;
    sum += e;
  }
  if constexpr (mode == Mode::train) {
    const float scale = static_cast<float>(dloss_scale / sum);
#pragma omp simd
    for (std::int64_t v = 0; v < V; ++v) row[v] *= scale;
    row[target] -= dloss_scale;
  }
  return static_cast<double>(mx) + std::log(sum) - static_cast<double>(target_logit);
}

// Rows per chunk. Every chunk streams all of wte twice (its fwd and dinp sgemms) and
// reads and writes all of dwte once, whatever its height, so short chunks are paid for
// in memory traffic and in sgemm efficiency at small M and K. Measured at N=256, C=768,
// V=50257 on 2 cores (Xeon AVX-512, oneDNN): forward+backward takes 366 / 276 / 220 /
// 200 ms with 32 / 64 / 128 / 256-row chunks, against 196 ms for the three plain sgemms
// of the whole batch. 256 rows cost a 51.5 MB workspace (25.7 MB at 128 rows); the
// allocator accounts it as workspace, so the planner sees it.
constexpr std::int64_t kMaxChunkRows = 256;

}  // namespace

// The chunk height used for N rows.
std::int64_t lm_head_loss_chunk_rows(std::int64_t N) {
  return std::min(N, kMaxChunkRows);
}

// The workspace of a call on N rows and V classes: logits (R, ldl), R the chunk height,
// ldl = V rounded up to whole 16-float vectors (64-byte aligned rows); none when N = 0.
// Both the kernel and lm_head_loss_workspace_bytes size it here.
std::optional<Shape> lm_head_logits_shape(std::int64_t N, std::int64_t V) {
  if (N == 0) return std::nullopt;
  return Shape{lm_head_loss_chunk_rows(N), (V + 15) / 16 * 16};
}

// inp (N,C), wte (Vp,C) (only its first V rows are read), targets (N) in [0,V)
//   -> losses (N); returns the sum of the losses.
// Train mode (dinp != nullptr), with dloss = dloss_scale for every row:
//   dinp (N,C) overwritten, dwte (Vp,C) rows [0,V) accumulated (+=).
// logits: workspace (R, ldl) with R = chunk_rows, ldl >= V.
double lm_head_loss(Context& ctx, const float* inp, const float* wte, const std::int32_t* targets,
                    std::int64_t N, std::int64_t C, std::int64_t V, float dloss_scale,
                    float* losses, float* dinp, float* dwte, float* logits, std::int64_t ldl,
                    std::int64_t chunk_rows) {
  const bool train = dinp != nullptr;
  for (std::int64_t n0 = 0; n0 < N; n0 += chunk_rows) {
    const std::int64_t R = std::min(chunk_rows, N - n0);
    const float* inp_chunk = inp + n0 * C;  // (R,C)
    // logits (R,V) = inp_chunk (R,C) @ wte[0:V]^T (C,V)
    sgemm(ctx, Trans::no, Trans::yes, R, V, C, 1.0f, inp_chunk, C, wte, C, 0.0f, logits, ldl);
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < R; ++r) {
      float* row = logits + r * ldl;
      const std::int32_t t = targets[n0 + r];
      const double loss = train ? softmax_xent_row<Mode::train>(row, V, t, dloss_scale)
                                : softmax_xent_row<Mode::eval>(row, V, t, dloss_scale);
      losses[n0 + r] = static_cast<float>(loss);
    }
    if (!train) continue;
    // dwte[0:V] (V,C) += dlogits^T (V,R) @ inp_chunk (R,C)
    sgemm(ctx, Trans::yes, Trans::no, V, C, R, 1.0f, logits, ldl, inp_chunk, C, 1.0f, dwte, C);
    // dinp_chunk (R,C) = dlogits (R,V) @ wte[0:V] (V,C); after dwte so that dinp may be inp.
    sgemm(ctx, Trans::no, Trans::no, R, C, V, 1.0f, logits, ldl, wte, C, 0.0f, dinp + n0 * C, C);
  }
  double total = 0.0;
  for (std::int64_t n = 0; n < N; ++n) total += losses[n];
  return total;
}

}  // namespace adacc::ops::cpu

namespace adacc::ops {

namespace {

struct LossShapes {
  std::int64_t B, T, C, Vp, N;
};

// Checks the tensors shared by both entry points and every target; returns the shapes.
LossShapes check_loss_args(const Tensor& inp, const Tensor& wte, const Tensor& targets, int vocab,
                           const Tensor& losses) {
  using cpu::kOp;
  require_cpu(kOp, {&inp, &wte, &targets, &losses});
  require(inp.defined() && inp.ndim() == 3 && inp.dtype() == DType::f32, kOp,
          "inp must be (B,T,C) f32 but is " + (inp.defined() ? inp.describe() : "missing"));
  const std::int64_t B = inp.dim(0), T = inp.dim(1), C = inp.dim(2);
  require(wte.defined() && wte.ndim() == 2 && wte.dtype() == DType::f32 && wte.dim(1) == C, kOp,
          "wte must be (Vp," + std::to_string(C) + ") f32 but is " +
              (wte.defined() ? wte.describe() : "missing"));
  const std::int64_t Vp = wte.dim(0);
  require(vocab >= 1 && vocab <= Vp, kOp,
          "vocab V=" + std::to_string(vocab) + " must be in [1, Vp=" + std::to_string(Vp) + "]");
  require_tensor(kOp, "targets", targets, {B, T}, DType::int32);
  require_tensor(kOp, "losses", losses, {B, T});
  const std::int32_t* tg = targets.data<std::int32_t>();
  for (std::int64_t n = 0; n < B * T; ++n) {
    if (tg[n] < 0 || tg[n] >= vocab) {
      fail(kOp, "target at position " + std::to_string(n) + " (b=" + std::to_string(n / T) +
                    ", t=" + std::to_string(n % T) + ") is " + std::to_string(tg[n]) +
                    ", outside [0, V=" + std::to_string(vocab) + ")");
    }
  }
  return {B, T, C, Vp, B * T};
}

float run(Context& ctx, const Tensor& inp, const Tensor& wte, const Tensor& targets, int vocab,
          float dloss_scale, Tensor& losses, float* dinp, float* dwte, const LossShapes& s) {
  const std::optional<Shape> shape = cpu::lm_head_logits_shape(s.N, vocab);
  if (!shape) return 0.0f;  // no rows
  const std::int64_t rows = (*shape)[0];
  const std::int64_t ldl = (*shape)[1];  // 64-byte aligned rows
  // logits (R, ldl): one chunk's logits, then its dlogits.
  Tensor logits =
      Tensor::empty(ctx.allocator(), *shape, DType::f32, MemCategory::workspace, "lm_head_logits");
  const double total = cpu::lm_head_loss(
      ctx, inp.data<float>(), wte.data<float>(), targets.data<std::int32_t>(), s.N, s.C, vocab,
      dloss_scale, losses.data<float>(), dinp, dwte, logits.data<float>(), ldl, rows);
  return static_cast<float>(total / static_cast<double>(s.N));
}

}  // namespace

float lm_head_loss_forward(Context& ctx, const Tensor& inp, const Tensor& wte,
                           const Tensor& targets, int vocab, Tensor& losses) {
  const LossShapes s = check_loss_args(inp, wte, targets, vocab, losses);
  return run(ctx, inp, wte, targets, vocab, 0.0f, losses, nullptr, nullptr, s);
}

float lm_head_loss_forward_backward(Context& ctx, const Tensor& inp, const Tensor& wte,
                                    const Tensor& targets, int vocab, float dloss_scale,
                                    Tensor& losses, Tensor& dinp, Tensor& dwte) {
  const LossShapes s = check_loss_args(inp, wte, targets, vocab, losses);
  require_cpu(cpu::kOp, {&dinp, &dwte});
  require_tensor(cpu::kOp, "dinp", dinp, {s.B, s.T, s.C});
  require_tensor(cpu::kOp, "dwte", dwte, {s.Vp, s.C});
  return run(ctx, inp, wte, targets, vocab, dloss_scale, losses, dinp.data<float>(),
             dwte.data<float>(), s);
}

std::size_t lm_head_loss_workspace_bytes(std::int64_t N, int vocab) {
  require(N >= 0 && vocab >= 1, "lm_head_loss_workspace_bytes",
          "N=" + std::to_string(N) + " must be >= 0 and vocab=" + std::to_string(vocab) + " >= 1");
  const std::optional<Shape> shape = cpu::lm_head_logits_shape(N, vocab);
  return shape ? accounted_tensor_bytes(*shape, DType::f32) : 0;
}

}  // namespace adacc::ops
