// Integer codecs: an f32 tensor, viewed as (rows R, C) with C its last dimension (a 0-d
// tensor is (1,1)), quantized to int8 / int4 / int2. These are the paper's lossy codecs:
// per-channel symmetric int8, and asymmetric per-group (S consecutive elements of a row,
// S = 64 or 128; a row's last group may be shorter) int8 / int4 / int2, the low-bit ones
// with the k elements farthest from their group's mean extracted first into an exact
// sparse list, so that a few outliers do not stretch the scale of the whole group.
//
// Formats (all little-endian; header = 16 bytes: u32 magic "ADIC", u32 params
// (bits | k << 8 | symmetric << 16 | stochastic << 17), u32 C (low 32 bits), u32 S (0 for
// int8-channel)):
//   int8-channel:  header | f32 scale[C] | int8 q[R*C]                  -> 16 + 4C + RC
//     scale_c = max_r |x_rc| / 127, q = round(x / scale_c) (0 where scale_c = 0),
//     x' = q * scale_c; |x - x'| <= scale_c / 2.
//   int<b>-g<S>[-naive|-sr] (bits b, k outliers per group, G = ceil(C/S) groups per row,
//   NG = R*G groups):
//     header | fp16 (scale, zero)[NG] | f32 outlier value[NG*k] | u8 outlier index[NG*k]
//     | packed q, each row ceil(C*b/8) bytes (element j of a row at bit b*j, LSB first)
//     -> 16 + 4*NG + 5*k*NG + R*ceil(C*b/8)
//   int8-g*: b=8 k=0; int4-g*: b=4 k=2; int2-g*: b=2 k=4; int4-g64-naive: b=4 k=0.
//   Per group: the k elements with the largest |x - mean(group)| (ties: lowest index) are
//   stored exactly (index within the group; 255 marks an unused slot when the group has
//   fewer than k elements) and restored bit-exactly. Over the other elements,
//   zero = lo rounded DOWN to fp16, scale = (hi - zero) / (2^b - 1) rounded UP to fp16,
//   q = clamp(round((x - zero) / scale), 0, 2^b - 1) (q = 0 where scale = 0), and
//   x' = zero + q * scale, so |x - x'| <= scale / 2 (the fp16 scale, which covers the
//   fp16 rounding of zero and scale) up to f32 rounding.
//   -sr (stochastic rounding): q = clamp(floor((x - zero) / scale + u), 0, 2^b - 1) with u
//   in [0,1) from a hash of the element's flat index and the group's (scale, zero) bits
//   (deterministic: the same tensor encodes to the same bytes), so E[x'] = x over u and
//   |x - x'| < scale.
// Non-finite inputs: encode throws InvalidArgument naming the first (lowest flat index)
// NaN or inf element. A group whose zero or scale overflows fp16 (|values| > ~65504)
// also throws InvalidArgument naming the group.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/ops/op_checks.h"
#include "codec_families.h"
#include "group_format.h"

#include <omp.h>

#ifdef __F16C__
#include <immintrin.h>
#endif

namespace adacc::compress {

namespace {

constexpr std::int64_t kMaxGroup = 128;

// (rows, C) of an f32 tensor of this shape: C is the last dimension.
struct RowsCols {
  std::int64_t rows, cols;
};
RowsCols rows_cols(const Shape& shape) {
  if (shape.empty()) return {1, 1};
  const std::int64_t c = shape.back();
  return {c == 0 ? 0 : shape_numel(shape) / c, c};
}

void write_header(std::uint8_t* p, std::uint32_t params, std::int64_t cols, std::uint32_t group) {
  const std::uint32_t h[4] = {kIntCodecMagic, params, static_cast<std::uint32_t>(cols), group};
  std::memcpy(p, h, kIntCodecHeaderBytes);
}

void check_header(std::string_view name, const std::uint8_t* p, std::uint32_t params,
                  std::int64_t cols, std::uint32_t group) {
  std::uint32_t h[4];
  std::memcpy(h, p, kIntCodecHeaderBytes);
  ops::require(h[0] == kIntCodecMagic && h[1] == params &&
                   h[2] == static_cast<std::uint32_t>(cols) && h[3] == group,
               name, "encoded header does not match this codec and shape");
}

// fp16 bits: round down / up (directed, so the group's range stays inside
// [zero, zero + qmax * scale]) and back to f32. F16C does it in hardware; otherwise
// _Float16's round-to-nearest is stepped one fp16 ulp when it lands on the wrong side.
#ifdef __F16C__
std::uint16_t f16_down(float x) {
  return _cvtss_sh(x, _MM_FROUND_TO_NEG_INF);
}
std::uint16_t f16_up(float x) {
  return _cvtss_sh(x, _MM_FROUND_TO_POS_INF);
}
float f16_to_float(std::uint16_t u) {
  return _cvtsh_ss(u);
}
#else
std::uint16_t f16_down(float x) {
  const auto h = static_cast<_Float16>(x);
  std::uint16_t u;
  std::memcpy(&u, &h, 2);
  if (static_cast<float>(h) <= x || std::isnan(x)) return u;
  if ((u & 0x7FFFu) == 0) return 0x8001u;  // +-0 -> -smallest subnormal
  return static_cast<std::uint16_t>((u & 0x8000u) ? u + 1 : u - 1);
}
std::uint16_t f16_up(float x) {
  return f16_down(-x) ^ 0x8000u;
}
float f16_to_float(std::uint16_t u) {
  _Float16 h;
  std::memcpy(&h, &u, 2);
  return static_cast<float>(h);
}
#endif
// The smallest float >= d.
// For d >= 0 (the only use), the next float up is one more in the bit pattern.
float float_up(double d) {
  const auto f = static_cast<float>(d);
  return static_cast<double>(f) < d && f >= 0.0f
             ? std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) + 1)
         : static_cast<double>(f) < d ? std::nextafter(f, std::numeric_limits<float>::infinity())
                                      : f;
}

// ---------------------------------------------------------------- int8 per channel

class Int8ChannelCodec final : public Codec {
 public:
  std::string_view name() const override { return "int8-channel"; }
  std::string description() const override {
    return "symmetric int8, one f32 scale per channel (last dimension)";
  }
  std::size_t encoded_bytes(const Shape& shape) const override {
    const RowsCols rc = rows_cols(shape);
    return kIntCodecHeaderBytes + 4 * static_cast<std::size_t>(rc.cols) +
           static_cast<std::size_t>(rc.rows * rc.cols);
  }

  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, name(),
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    // (Not a structured binding: clang 14 cannot name one inside an OpenMP region.)
    const RowsCols rc = rows_cols(in.shape());
    const std::int64_t rows = rc.rows, cols = rc.cols;
    Tensor out =
        Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(encoded_bytes(in.shape()))},
                      DType::uint8, MemCategory::compressed, in.name() + ".int8-channel");
    auto* base = static_cast<std::uint8_t*>(out.raw());
    write_header(base, kParams, cols, 0);
    // x (rows, C) -> scale (C), q (rows, C)
    const float* x = in.data<float>();
    float* scale = reinterpret_cast<float*>(base + kIntCodecHeaderBytes);
    auto* q = reinterpret_cast<std::int8_t*>(base + kIntCodecHeaderBytes + 4 * cols);
    // Column maxima: each thread owns a range of columns (whole cache lines) and sweeps
    // all rows. x * 0 is NaN exactly for NaN and inf, so `poison` flags non-finite input.
    float poison = 0.0f;
#pragma omp parallel reduction(+ : poison)
    {
      const std::int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
      const std::int64_t per = (cols + nt * 16 - 1) / (nt * 16) * 16;
      const std::int64_t c0 = std::min(cols, t * per), c1 = std::min(cols, c0 + per);
      for (std::int64_t c = c0; c < c1; ++c) scale[c] = 0.0f;
      for (std::int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * cols;
#pragma omp simd reduction(+ : poison)
        for (std::int64_t c = c0; c < c1; ++c) {
          scale[c] = std::max(scale[c], std::abs(xr[c]));
          poison += xr[c] * 0.0f;
        }
      }
      for (std::int64_t c = c0; c < c1; ++c) scale[c] /= 127.0f;
    }
    if (std::isnan(poison)) {
      std::int64_t i = 0;
      while (std::isfinite(x[i])) ++i;
      throw_if_non_finite(in, i);
    }
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      std::int8_t* qr = q + r * cols;
#pragma omp simd
      for (std::int64_t c = 0; c < cols; ++c) {
        const float s = scale[c];
        const float t = s > 0.0f ? std::nearbyint(xr[c] / s) : 0.0f;
        qr[c] = static_cast<std::int8_t>(t < -127.0f ? -127.0f : (t > 127.0f ? 127.0f : t));
      }
    }
    return out;
  }

  void decode(Context& ctx, const Tensor& encoded, Tensor& out) const override {
    require_decodable(*this, encoded, out);
    const RowsCols rc = rows_cols(out.shape());
    const std::int64_t rows = rc.rows, cols = rc.cols;
    const auto* base = static_cast<const std::uint8_t*>(encoded.raw());
    check_header(name(), base, kParams, cols, 0);
    // scale (C), q (rows, C) -> y (rows, C)
    const float* scale = reinterpret_cast<const float*>(base + kIntCodecHeaderBytes);
    const auto* q = reinterpret_cast<const std::int8_t*>(base + kIntCodecHeaderBytes + 4 * cols);
    float* y = out.data<float>();
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
#pragma omp simd
      for (std::int64_t c = 0; c < cols; ++c) {
        y[r * cols + c] = static_cast<float>(q[r * cols + c]) * scale[c];
      }
    }
  }

 private:
  static constexpr std::uint32_t kParams = int_codec_params(8, 0, true, false);

  [[noreturn]] void throw_if_non_finite(const Tensor& in, std::int64_t first_bad) const {
    ops::fail(name(), "cannot encode non-finite element " + std::to_string(first_bad) + " (= " +
                          std::to_string(in.data<float>()[first_bad]) + ") of " + in.describe());
  }
};

// ---------------------------------------------------------------- per-group, outliers

// Reductions over a group, in GCC vector types (16 floats; the compiler maps them to
// AVX-512 or narrower registers), with a scalar tail for short groups.
using V16f = float __attribute__((vector_size(64)));
using V8f = float __attribute__((vector_size(32)));
using V8d = double __attribute__((vector_size(64)));
constexpr int kLanes = 16;

V16f load16(const float* p) {
  V16f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
V16f splat16(float x) {
  return V16f{} + x;
}

// sum of x (n), in double.
double group_sum(const float* x, std::int64_t n) {
  V8d acc{};
  std::int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    V8f v;
    std::memcpy(&v, x + j, sizeof v);
    acc += __builtin_convertvector(v, V8d);
  }
  double s = 0.0;
  for (; j < n; ++j) s += x[j];
  for (int e = 0; e < 8; ++e) s += acc[e];
  return s;
}

// The index of the first largest d (n) that is >= 0, or -1 when every d < 0.
std::int64_t group_argmax(const float* d, std::int64_t n) {
  using V16i = std::int32_t __attribute__((vector_size(64)));
  V16f best = splat16(-1.0f);
  V16i at = V16i{} - 1, idx = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const V16f v = load16(d + j);
    const auto gt = v > best;  // strict: each lane keeps its first maximum
    best = gt ? v : best;
    at = gt ? idx : at;
    idx += kLanes;
  }
  float m = -1.0f;
  std::int64_t mi = -1;
  for (int e = 0; e < kLanes; ++e) {
    if (best[e] > m || (best[e] == m && at[e] >= 0 && at[e] < mi)) m = best[e], mi = at[e];
  }
  for (; j < n; ++j) {
    if (d[j] > m) m = d[j], mi = j;
  }
  return mi;
}

// [lo, hi] of the x (n) whose dist is >= 0 (all of them when dist is null); lo > hi
// when there are none.
void group_range(const float* x, const float* dist, std::int64_t n, float& lo, float& hi) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  V16f l = splat16(inf), h = splat16(-inf);
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    V16f a = load16(x + j), b = a;
    if (dist != nullptr) {
      const auto kept = load16(dist + j) >= 0.0f;
      a = kept ? a : splat16(inf);
      b = kept ? b : splat16(-inf);
    }
    l = l < a ? l : a;
    h = h > b ? h : b;
  }
  lo = inf, hi = -inf;
  for (; j < n; ++j) {
    if (dist == nullptr || dist[j] >= 0.0f) lo = std::min(lo, x[j]), hi = std::max(hi, x[j]);
  }
  for (int e = 0; e < kLanes; ++e) lo = std::min(lo, l[e]), hi = std::max(hi, h[e]);
}

// The lowbias32 hash of (i, salt); U is std::uint32_t or a vector of them (whole groups).
template <class U>
U lowbias32(U i, std::uint32_t salt) {
  U h = i * 0x9E3779B9u ^ salt;
  h ^= h >> 16;
  h *= 0x7FEB352Du;
  h ^= h >> 15;
  h *= 0x846CA68Bu;
  h ^= h >> 16;
  return h;
}
// A uniform number in [0,1) from its top 24 bits.
inline float hash_unit(std::uint32_t i, std::uint32_t salt) {
  return static_cast<float>(lowbias32(i, salt) >> 8) * 0x1.0p-24f;
}

// Whole-group helpers on GCC vector types: lane-wise select, horizontal reductions by
// halving shuffles, and round-to-nearest-even by the 1.5 * 2^23 trick (exact for
// |t| < 2^22; beyond, the result keeps its sign and magnitude, which the clamp to
// [0, qmax] that follows every use makes exact again).
using V16i = std::int32_t __attribute__((vector_size(64)));
using V16u = std::uint32_t __attribute__((vector_size(64)));
using V16u8 = std::uint8_t __attribute__((vector_size(16)));
constexpr V16i kIota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

template <class V>
V vmax(V a, V b) {
  return a > b ? a : b;
}
template <class V>
V vmin(V a, V b) {
  return a < b ? a : b;
}
// The halving shuffles: lanes i and i ^ w meet at step w = 8, 4, 2, 1. (GCC's
// __builtin_shuffle; clang, which builds the fuzz targets, spells it __builtin_shufflevector.)
#if defined(__clang__)
#define ADACC_SHUFFLE16(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define ADACC_SHUFFLE16(v, ...) __builtin_shuffle(v, V16i{__VA_ARGS__})
#endif
template <class V, class Op>
auto hreduce(V v, Op op) {
  v = op(v, ADACC_SHUFFLE16(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
  v = op(v, ADACC_SHUFFLE16(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
  v = op(v, ADACC_SHUFFLE16(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
  v = op(v, ADACC_SHUFFLE16(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
  return v[0];
}
#undef ADACC_SHUFFLE16
V16f round_even(V16f t) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
  return (t + kShift) - kShift;
}
// Uniform [0,1) per lane: hash_unit(first + lane, salt), vectorized.
V16f hash_units(std::uint32_t first, std::uint32_t salt) {
  const V16u h = lowbias32(__builtin_convertvector(kIota, V16u) + first, salt);
  return __builtin_convertvector(h >> 8, V16f) * 0x1.0p-24f;
}

// Packs 8 values < 2^Bits (bytes of w, little-endian) into 8*Bits/8 bytes, element e at
// bit Bits*e; unpack is the inverse. Word-wide bit tricks instead of a byte loop.
template <int Bits>
std::uint64_t pack_word(std::uint64_t w) {
  if constexpr (Bits == 4) {
    w = (w | w >> 4) & 0x00FF00FF00FF00FFull;
    w = (w | w >> 8) & 0x0000FFFF0000FFFFull;
    return (w | w >> 16) & 0xFFFFFFFFull;
  } else if constexpr (Bits == 2) {
    w = (w | w >> 6) & 0x000F000F000F000Full;
    w = (w | w >> 12) & 0x000000FF000000FFull;
    return (w | w >> 24) & 0xFFFFull;
  } else {
    return w;
  }
}
template <int Bits>
std::uint64_t unpack_word(std::uint64_t w) {
  if constexpr (Bits == 4) {
    w = (w | w << 16) & 0x0000FFFF0000FFFFull;
    w = (w | w << 8) & 0x00FF00FF00FF00FFull;
    return (w | w << 4) & 0x0F0F0F0F0F0F0F0Full;
  } else if constexpr (Bits == 2) {
    w = (w | w << 24) & 0x000000FF000000FFull;
    w = (w | w << 12) & 0x000F000F000F000Full;
    return (w | w << 6) & 0x0303030303030303ull;
  } else {
    return w;
  }
}

// Per-group kernels for Bits-bit values, K outliers per group, groups of Group elements
// and round-to-nearest or stochastic rounding (compile-time, so the packing loops unroll
// and vectorize). Whole groups take a register-resident path (encode_full / decode_full);
// a row's shorter last group takes the general one; both give the same bytes.
template <int Bits, int K, int Group, bool Stochastic>
struct GroupKernels {
  static constexpr int kPerByte = 8 / Bits;
  static constexpr int kQmax = (1 << Bits) - 1;
  static constexpr std::int64_t kGroup = Group;
  static_assert(Group <= kMaxGroup && Group % kPerByte == 0);

  // (lo, hi) of a group's kept elements -> its fp16 (scale, zero) written to base, and the
  // f32 values; returns whether they overflow fp16.
  static bool scale_zero(float lo, float hi, std::uint8_t* base, const GroupLayout& L,
                         std::int64_t g, float& scale, float& zero) {
    if (lo > hi) lo = hi = 0.0f;  // every element is an outlier
    const std::uint16_t zero_bits = f16_down(lo);
    zero = f16_to_float(zero_bits);
    const std::uint16_t scale_bits =
        f16_up(float_up((static_cast<double>(hi) - static_cast<double>(zero)) / kQmax));
    scale = f16_to_float(scale_bits);
    const std::uint16_t sz[2] = {scale_bits, zero_bits};
    std::memcpy(base + L.scales + 4 * g, sz, 4);
    return !std::isfinite(zero) || !std::isfinite(scale);
  }
  static std::uint32_t salt_of(const std::uint8_t* base, const GroupLayout& L, std::int64_t g) {
    std::uint16_t sz[2];
    std::memcpy(sz, base + L.scales + 4 * g, 4);
    return static_cast<std::uint32_t>(sz[0]) << 16 | sz[1];
  }

  // U whole groups (Group elements each) in registers, phase by phase so that the
  // independent dependency chains of the groups (reductions, the fp16 scale) overlap:
  // xg[u] -> as encode_group, result in ret[u].
  template <int U>
  static void encode_full(const float* const (&xg)[U], const std::int64_t (&i0)[U],
                          std::uint8_t* base, const GroupLayout& L, const std::int64_t (&g)[U],
                          std::uint8_t* const (&pk)[U], std::int64_t (&ret)[U]) {
    constexpr int kChunks = Group / kLanes;
    double sum[U];
    for (int u = 0; u < U; ++u) {
      // group_sum's order exactly (8 double lanes over chunks of 8, then lane by lane).
      V8d acc{};
      for (int j = 0; j < Group; j += 8) {
        V8f c8;
        std::memcpy(&c8, xg[u] + j, sizeof c8);
        acc += __builtin_convertvector(c8, V8d);
      }
      sum[u] = 0.0;
      for (int e = 0; e < 8; ++e) sum[u] += acc[e];
    }
    bool finite = true;
    for (int u = 0; u < U; ++u) finite = finite && std::isfinite(sum[u]);
    if (!finite) {  // rare: the general path finds the element
      for (int u = 0; u < U; ++u) ret[u] = encode_group(xg[u], Group, i0[u], base, L, g[u], pk[u]);
      return;
    }
    V16f v[U][kChunks], d[U][kChunks];
    for (int u = 0; u < U; ++u) {
      for (int c = 0; c < kChunks; ++c) v[u][c] = load16(xg[u] + c * kLanes);
    }
    constexpr float inf = std::numeric_limits<float>::infinity();
    if constexpr (K > 0) {
      // Outliers: the K largest |x - mean|, ties to the lowest index; taken ones get -1.
      for (int u = 0; u < U; ++u) {
        const auto mean = static_cast<float>(sum[u] / static_cast<double>(Group));
        for (int c = 0; c < kChunks; ++c) {
          const V16f t = v[u][c] - mean;
          d[u][c] = t < 0.0f ? -t : t;
        }
      }
      for (int s = 0; s < K; ++s) {
        float mx[U];
        for (int u = 0; u < U; ++u) {
          V16f m = d[u][0];
          for (int c = 1; c < kChunks; ++c) m = vmax(m, d[u][c]);
          mx[u] = hreduce(m, [](V16f a, V16f b) { return vmax(a, b); });
        }
        int j[U];
        for (int u = 0; u < U; ++u) {
          V16i at = V16i{} + Group;
          for (int c = 0; c < kChunks; ++c) {
            at = d[u][c] == mx[u] ? vmin(at, kIota + c * kLanes) : at;
          }
          j[u] = hreduce(at, [](V16i a, V16i b) { return vmin(a, b); });
        }
        for (int u = 0; u < U; ++u) {
          base[L.indices + g[u] * K + s] = static_cast<std::uint8_t>(j[u]);
          std::memcpy(base + L.values + 4 * (g[u] * K + s), xg[u] + j[u], 4);
          for (int c = 0; c < kChunks; ++c) {
            d[u][c] = kIota + c * kLanes == j[u] ? -1.0f : d[u][c];
          }
        }
      }
    }
    float lo[U], hi[U];
    for (int u = 0; u < U; ++u) {
      V16f lo_v = V16f{} + inf, hi_v = V16f{} - inf;
      for (int c = 0; c < kChunks; ++c) {
        if constexpr (K > 0) {
          const auto kept = d[u][c] >= 0.0f;
          lo_v = vmin(lo_v, kept ? v[u][c] : V16f{} + inf);
          hi_v = vmax(hi_v, kept ? v[u][c] : V16f{} - inf);
        } else {
          lo_v = vmin(lo_v, v[u][c]);
          hi_v = vmax(hi_v, v[u][c]);
        }
      }
      lo[u] = hreduce(lo_v, [](V16f a, V16f b) { return vmin(a, b); });
      hi[u] = hreduce(hi_v, [](V16f a, V16f b) { return vmax(a, b); });
    }
    float scale[U], zero[U];
    bool overflow[U];
    for (int u = 0; u < U; ++u)
      overflow[u] = scale_zero(lo[u], hi[u], base, L, g[u], scale[u], zero[u]);
    for (int u = 0; u < U; ++u) {
      const float inv_ok = scale[u] > 0.0f ? 1.0f : 0.0f;
      const float div = scale[u] > 0.0f ? scale[u] : 1.0f;
      alignas(64) std::uint8_t q[Group];
      for (int c = 0; c < kChunks; ++c) {
        V16f t = (v[u][c] - zero[u]) / div;
        if constexpr (Stochastic) {
          t += hash_units(static_cast<std::uint32_t>(i0[u] + c * kLanes), salt_of(base, L, g[u]));
          const V16f r = round_even(t);
          t = r > t ? r - 1.0f : r;  // floor
        } else {
          t = round_even(t);
        }
        t = inv_ok * t;
        t = vmin(vmax(t, V16f{}), V16f{} + static_cast<float>(kQmax));
        const V16i qi = __builtin_convertvector(t, V16i);
        for (int e = 0; e < kLanes; ++e) q[c * kLanes + e] = static_cast<std::uint8_t>(qi[e]);
      }
      for (int w = 0; w < Group / 8; ++w) {
        std::uint64_t word;
        std::memcpy(&word, q + 8 * w, 8);
        const std::uint64_t packed = pack_word<Bits>(word);
        std::memcpy(pk[u] + w * Bits, &packed, Bits);  // 8 values of Bits bits = Bits bytes
      }
      ret[u] = overflow[u] ? -2 : -1;
    }
  }

  // A whole group: packed q, (scale, zero), outliers -> yg (Group).
  static void decode_full(const std::uint8_t* pk, float scale, float zero, float* yg) {
    alignas(64) std::uint8_t q[Group];
    for (int w = 0; w < Group / 8; ++w) {
      std::uint64_t word = 0;
      std::memcpy(&word, pk + w * Bits, Bits);
      word = unpack_word<Bits>(word);
      std::memcpy(q + 8 * w, &word, 8);
    }
    // (a plain loop: GCC 12 scalarizes __builtin_convertvector from u8 lanes)
#pragma omp simd
    for (int j = 0; j < Group; ++j) yg[j] = zero + static_cast<float>(q[j]) * scale;
  }

  // xg (n <= Group; flat index of its first element i0) -> group g's scale/zero,
  // outliers and packed q in base. Returns -1 when fine, the index in the group of its
  // first non-finite element, or -2 when the scale/zero overflow fp16.
  // (Kept out of inter-procedural optimization: it serves short groups and errors, and
  // specialized for n = Group GCC warns about its never-run tail loops.)
  [[gnu::noipa]] static std::int64_t encode_group(const float* xg, std::int64_t n, std::int64_t i0,
                                                  std::uint8_t* base, const GroupLayout& L,
                                                  std::int64_t g, std::uint8_t* pk) {
    // A double sum of at most 64 floats cannot overflow: it is finite iff every x is.
    const double sum = group_sum(xg, n);
    if (!std::isfinite(sum)) {
      for (std::int64_t j = 0; j < n; ++j) {
        if (!std::isfinite(xg[j])) return j;
      }
    }
    // Outliers: the K elements farthest from the mean, ties to the lowest index; taken
    // ones get distance -1 (below every real distance).
    float dist[kGroup];
    if constexpr (K > 0) {
      const auto mean = static_cast<float>(sum / static_cast<double>(n));
#pragma omp simd
      for (std::int64_t j = 0; j < n; ++j) dist[j] = std::abs(xg[j] - mean);
      for (int s = 0; s < K; ++s) {
        const std::int64_t j = group_argmax(dist, n);
        std::uint8_t idx = kUnusedOutlierSlot;
        float value = 0.0f;
        if (j >= 0) {
          idx = static_cast<std::uint8_t>(j);
          value = xg[j];
          dist[j] = -1.0f;
        }
        base[L.indices + g * K + s] = idx;
        std::memcpy(base + L.values + 4 * (g * K + s), &value, 4);
      }
    }
    // Range of the other elements.
    float lo, hi;
    group_range(xg, K > 0 ? dist : nullptr, n, lo, hi);
    float scale, zero;
    const bool overflow = scale_zero(lo, hi, base, L, g, scale, zero);
    // Quantize (outlier positions too; decode overwrites them) and pack.
    std::uint8_t q[kGroup];
    if (n < kGroup) std::memset(q, 0, sizeof q);
    const float inv_ok = scale > 0.0f ? 1.0f : 0.0f;
    const float div = scale > 0.0f ? scale : 1.0f;
    if constexpr (Stochastic) {
      const std::uint32_t salt = salt_of(base, L, g);
      const auto first = static_cast<std::uint32_t>(i0);
#pragma omp simd
      for (std::int64_t j = 0; j < n; ++j) {
        const float u = hash_unit(first + static_cast<std::uint32_t>(j), salt);
        const float t = inv_ok * std::floor((xg[j] - zero) / div + u);
        const float c = t < 0.0f ? 0.0f : (t > kQmax ? static_cast<float>(kQmax) : t);
        q[j] = static_cast<std::uint8_t>(c);
      }
    } else {
#pragma omp simd
      for (std::int64_t j = 0; j < n; ++j) {
        const float t = inv_ok * std::nearbyint((xg[j] - zero) / div);
        const float c = t < 0.0f ? 0.0f : (t > kQmax ? static_cast<float>(kQmax) : t);
        q[j] = static_cast<std::uint8_t>(c);
      }
    }
    const std::int64_t nbytes = (n * Bits + 7) / 8;
    for (std::int64_t b = 0; b < nbytes; ++b) {
      unsigned byte = 0;
      for (int e = 0; e < kPerByte; ++e)
        byte |= static_cast<unsigned>(q[b * kPerByte + e]) << (Bits * e);
      pk[b] = static_cast<std::uint8_t>(byte);
    }
    return overflow ? -2 : -1;
  }

  static void encode(const float* x, std::uint8_t* base, const GroupLayout& L,
                     std::int64_t& first_bad, std::int64_t& first_overflow) {
    std::int64_t bad_min = first_bad, overflow_min = first_overflow;
    // x (rows, C) -> per group g: (scale, zero) fp16, K outliers, packed q
    // Groups in pairs (two whole groups interleave in encode_full); a pair with a short
    // group goes one by one.
    const std::int64_t pairs = (L.groups + 1) / 2;
#pragma omp parallel for schedule(static) reduction(min : bad_min, overflow_min)
    for (std::int64_t p = 0; p < pairs; ++p) {
      const float* xg[2];
      std::int64_t i0[2], n[2], g[2], ret[2];
      std::uint8_t* pk[2];
      const int count = 2 * p + 1 < L.groups ? 2 : 1;
      for (int u = 0; u < count; ++u) {
        g[u] = 2 * p + u;
        const std::int64_t r = g[u] / L.groups_per_row, j0 = (g[u] % L.groups_per_row) * kGroup;
        n[u] = std::min(kGroup, L.cols - j0);
        i0[u] = r * L.cols + j0;
        xg[u] = x + i0[u];
        pk[u] = base + L.packed + r * L.row_bytes + j0 * Bits / 8;
      }
      if (count == 2 && n[0] == Group && n[1] == Group) {
        encode_full<2>(xg, i0, base, L, g, pk, ret);
      } else {
        for (int u = 0; u < count; ++u) {
          if (n[u] == Group) {
            const float* const x1[1] = {xg[u]};
            const std::int64_t i1[1] = {i0[u]}, g1[1] = {g[u]};
            std::uint8_t* const p1[1] = {pk[u]};
            std::int64_t r1[1];
            encode_full<1>(x1, i1, base, L, g1, p1, r1);
            ret[u] = r1[0];
          } else {
            ret[u] = encode_group(xg[u], n[u], i0[u], base, L, g[u], pk[u]);
          }
        }
      }
      for (int u = 0; u < count; ++u) {
        if (ret[u] >= 0) bad_min = std::min(bad_min, i0[u] + ret[u]);
        if (ret[u] == -2) overflow_min = std::min(overflow_min, g[u]);
      }
    }
    first_bad = bad_min;
    first_overflow = overflow_min;
  }

  static void decode(const std::uint8_t* base, float* y, const GroupLayout& L) {
    // per group: (scale, zero), packed q, outliers -> y (rows, C)
#pragma omp parallel for schedule(static)
    for (std::int64_t g = 0; g < L.groups; ++g) {
      const std::int64_t r = g / L.groups_per_row, j0 = (g % L.groups_per_row) * kGroup;
      const std::int64_t n = std::min(kGroup, L.cols - j0);
      std::uint16_t sz[2];
      std::memcpy(sz, base + L.scales + 4 * g, 4);
      const float scale = f16_to_float(sz[0]), zero = f16_to_float(sz[1]);
      const std::uint8_t* pk = base + L.packed + r * L.row_bytes + j0 * Bits / 8;
      float* yg = y + r * L.cols + j0;
      if (n == Group) {
        decode_full(pk, scale, zero, yg);
      } else {
        std::uint8_t q[kGroup];
        const std::int64_t nbytes = (n * Bits + 7) / 8;
        for (std::int64_t b = 0; b < nbytes; ++b) {
          for (int e = 0; e < kPerByte; ++e) {
            q[b * kPerByte + e] = static_cast<std::uint8_t>((pk[b] >> (Bits * e)) & kQmax);
          }
        }
#pragma omp simd
        for (std::int64_t j = 0; j < n; ++j) yg[j] = zero + static_cast<float>(q[j]) * scale;
      }
      for (int s = 0; s < K; ++s) {
        const std::uint8_t idx = base[L.indices + g * K + s];
        if (idx != kUnusedOutlierSlot) std::memcpy(&yg[idx], base + L.values + 4 * (g * K + s), 4);
      }
    }
  }
};

template <int Bits, int K, int Group = 64, bool Stochastic = false>
class GroupCodec final : public Codec {
 public:
  explicit GroupCodec(std::string name) : name_(std::move(name)) {}

  std::string_view name() const override { return name_; }
  std::string description() const override {
    std::string d = "int" + std::to_string(Bits) + ", groups of " + std::to_string(Group) +
                    " along the last dimension, fp16 scale and zero, ";
    d += K > 0 ? std::to_string(K) + " outliers per group kept exactly, " : "no outliers, ";
    return d + (Stochastic ? "stochastic rounding" : "round to nearest");
  }
  std::size_t encoded_bytes(const Shape& shape) const override {
    return group_layout(shape, Bits, K, Group).total;
  }

  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, name(),
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    const GroupLayout L = group_layout(in.shape(), Bits, K, Group);
    Tensor out = Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(L.total)}, DType::uint8,
                               MemCategory::compressed, in.name() + "." + name_);
    auto* base = static_cast<std::uint8_t*>(out.raw());
    write_header(base, kParams, L.cols, Group);
    const float* x = in.data<float>();
    constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();
    std::int64_t first_bad = none, first_overflow = none;
    Kernels::encode(x, base, L, first_bad, first_overflow);
    if (first_bad != none) {
      ops::fail(name(), "cannot encode non-finite element " + std::to_string(first_bad) +
                            " (= " + std::to_string(x[first_bad]) + ") of " + in.describe());
    }
    if (first_overflow != none) {
      ops::fail(name(), "group " + std::to_string(first_overflow) + " of " + in.describe() +
                            " has values beyond the fp16 range of its scale/zero");
    }
    return out;
  }

  void decode(Context& ctx, const Tensor& encoded, Tensor& out) const override {
    require_decodable(*this, encoded, out);
    const GroupLayout L = group_layout(out.shape(), Bits, K, Group);
    const auto* base = static_cast<const std::uint8_t*>(encoded.raw());
    check_header(name(), base, kParams, L.cols, Group);
    Kernels::decode(base, out.data<float>(), L);
  }

 private:
  using Kernels = GroupKernels<Bits, K, Group, Stochastic>;
  static constexpr std::uint32_t kParams = int_codec_params(Bits, K, false, Stochastic);
  std::string name_;
};

}  // namespace

std::vector<std::unique_ptr<Codec>> int_codecs() {
  std::vector<std::unique_ptr<Codec>> codecs;
  codecs.push_back(std::make_unique<Int8ChannelCodec>());
  codecs.push_back(std::make_unique<GroupCodec<8, 0>>("int8-g64"));
  codecs.push_back(std::make_unique<GroupCodec<8, 0, 128>>("int8-g128"));
  codecs.push_back(std::make_unique<GroupCodec<4, 2>>("int4-g64"));
  codecs.push_back(std::make_unique<GroupCodec<4, 2, 128>>("int4-g128"));
  codecs.push_back(std::make_unique<GroupCodec<4, 2, 64, true>>("int4-g64-sr"));
  codecs.push_back(std::make_unique<GroupCodec<4, 0>>("int4-g64-naive"));
  codecs.push_back(std::make_unique<GroupCodec<2, 4>>("int2-g64"));
  codecs.push_back(std::make_unique<GroupCodec<2, 4, 128>>("int2-g128"));
  codecs.push_back(std::make_unique<GroupCodec<2, 4, 64, true>>("int2-g64-sr"));
  return codecs;
}

}  // namespace adacc::compress
