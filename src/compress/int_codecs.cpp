// Integer codecs: an f32 tensor, viewed as (rows R, C) with C its last dimension (a 0-d
// tensor is (1,1)), quantized to int8 / int4 / int2. These are the paper's lossy codecs:
// per-channel symmetric int8, and asymmetric per-group (64 consecutive elements of a row;
// a row's last group may be shorter) int8 / int4 / int2, the low-bit ones with the k
// elements farthest from their group's mean extracted first into an exact sparse list,
// so that a few outliers do not stretch the scale of the whole group.
//
// Formats (all little-endian; header = 16 bytes: u32 magic "ADIC", u32 params
// (bits | k << 8 | symmetric << 16), u32 C (low 32 bits), u32 0):
//   int8-channel:  header | f32 scale[C] | int8 q[R*C]                  -> 16 + 4C + RC
//     scale_c = max_r |x_rc| / 127, q = round(x / scale_c) (0 where scale_c = 0),
//     x' = q * scale_c; |x - x'| <= scale_c / 2.
//   int8-g64, int4-g64[-naive], int2-g64 (bits b, k outliers per group, G = ceil(C/64)
//   groups per row, NG = R*G groups):
//     header | fp16 (scale, zero)[NG] | f32 outlier value[NG*k] | u8 outlier index[NG*k]
//     | packed q, each row ceil(C*b/8) bytes (element j of a row at bit b*j, LSB first)
//     -> 16 + 4*NG + 5*k*NG + R*ceil(C*b/8)
//   int8-g64: b=8 k=0; int4-g64: b=4 k=2; int2-g64: b=2 k=4; int4-g64-naive: b=4 k=0.
//   Per group: the k elements with the largest |x - mean(group)| (ties: lowest index) are
//   stored exactly (index within the group, 0..63; 255 marks an unused slot when the group
//   has fewer than k elements) and restored bit-exactly. Over the other elements,
//   zero = lo rounded DOWN to fp16, scale = (hi - zero) / (2^b - 1) rounded UP to fp16,
//   q = clamp(round((x - zero) / scale), 0, 2^b - 1) (q = 0 where scale = 0), and
//   x' = zero + q * scale, so |x - x'| <= scale / 2 (the fp16 scale, which covers the
//   fp16 rounding of zero and scale) up to f32 rounding.
// Non-finite inputs: encode throws InvalidArgument naming the first (lowest flat index)
// NaN or inf element. A group whose zero or scale overflows fp16 (|values| > ~65504)
// also throws InvalidArgument naming the group. No stochastic rounding (not implemented).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/ops/op_checks.h"
#include "codec_families.h"

namespace adacc::compress {

namespace {

constexpr std::uint32_t kMagic = 0x43494441u;  // "ADIC"
constexpr std::size_t kHeaderBytes = 16;
constexpr std::int64_t kGroup = 64;
constexpr std::uint8_t kUnusedSlot = 255;

// (rows, C) of an f32 tensor of this shape: C is the last dimension.
struct RowsCols {
  std::int64_t rows, cols;
};
RowsCols rows_cols(const Shape& shape) {
  if (shape.empty()) return {1, 1};
  const std::int64_t c = shape.back();
  return {c == 0 ? 0 : shape_numel(shape) / c, c};
}

void write_header(std::uint8_t* p, std::uint32_t params, std::int64_t cols) {
  const std::uint32_t h[4] = {kMagic, params, static_cast<std::uint32_t>(cols), 0};
  std::memcpy(p, h, kHeaderBytes);
}

void check_header(std::string_view name, const std::uint8_t* p, std::uint32_t params,
                  std::int64_t cols) {
  std::uint32_t h[4];
  std::memcpy(h, p, kHeaderBytes);
  ops::require(h[0] == kMagic && h[1] == params && h[2] == static_cast<std::uint32_t>(cols), name,
               "encoded header does not match this codec and shape");
}

// fp16 helpers. _Float16 conversions round to nearest; the directed versions step one
// fp16 ulp when the nearest one lies on the wrong side.
std::uint16_t h_bits(_Float16 h) {
  std::uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}
_Float16 h_from_bits(std::uint16_t u) {
  _Float16 h;
  std::memcpy(&h, &u, 2);
  return h;
}
// The largest fp16 <= x (x finite); -inf when below the fp16 range.
_Float16 f16_round_down(double x) {
  _Float16 h = static_cast<_Float16>(x);
  if (static_cast<double>(h) <= x) return h;
  const std::uint16_t u = h_bits(h);
  if ((u & 0x7FFFu) == 0) return h_from_bits(0x8001u);  // +-0 -> -smallest subnormal
  return h_from_bits(static_cast<std::uint16_t>((u & 0x8000u) ? u + 1 : u - 1));
}
// The smallest fp16 >= x.
_Float16 f16_round_up(double x) {
  return -f16_round_down(-x);
}

// ---------------------------------------------------------------- int8 per channel

class Int8ChannelCodec final : public Codec {
 public:
  std::string_view name() const override { return "int8-channel"; }
  std::size_t encoded_bytes(const Shape& shape) const override {
    const RowsCols rc = rows_cols(shape);
    return kHeaderBytes + 4 * static_cast<std::size_t>(rc.cols) +
           static_cast<std::size_t>(rc.rows * rc.cols);
  }

  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, name(),
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    const auto [rows, cols] = rows_cols(in.shape());
    Tensor out =
        Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(encoded_bytes(in.shape()))},
                      DType::uint8, MemCategory::compressed, in.name() + ".int8-channel");
    auto* base = static_cast<std::uint8_t*>(out.raw());
    write_header(base, kParams, cols);
    // x (rows, C) -> scale (C), q (rows, C)
    const float* x = in.data<float>();
    float* scale = reinterpret_cast<float*>(base + kHeaderBytes);
    auto* q = reinterpret_cast<std::int8_t*>(base + kHeaderBytes + 4 * cols);
    std::int64_t first_bad = std::numeric_limits<std::int64_t>::max();
    // Column maxima, threaded over blocks of 16 columns (one cache line per row).
    const std::int64_t blocks = (cols + 15) / 16;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t c0 = b * 16, c1 = std::min(cols, c0 + 16);
      float m[16] = {};
      for (std::int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * cols;
        for (std::int64_t c = c0; c < c1; ++c) {
          const float a = std::abs(xr[c]);
          if (!(a <= std::numeric_limits<float>::max()))
            first_bad = std::min(first_bad, r * cols + c);
          m[c - c0] = std::max(m[c - c0], a);
        }
      }
      for (std::int64_t c = c0; c < c1; ++c) scale[c] = m[c - c0] / 127.0f;
    }
    throw_if_non_finite(in, first_bad);
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      std::int8_t* qr = q + r * cols;
#pragma omp simd
      for (std::int64_t c = 0; c < cols; ++c) {
        const float s = scale[c];
        const float t = s > 0.0f ? std::nearbyint(xr[c] / s) : 0.0f;
        qr[c] = static_cast<std::int8_t>(std::clamp(t, -127.0f, 127.0f));
      }
    }
    return out;
  }

  void decode(Context& ctx, const Tensor& encoded, Tensor& out) const override {
    ops::require(out.defined() && out.dtype() == DType::f32 && encoded.defined() &&
                     encoded.dtype() == DType::uint8 &&
                     encoded.nbytes() == encoded_bytes(out.shape()),
                 name(),
                 "cannot decode " + (encoded.defined() ? encoded.describe() : "missing") +
                     " into " + (out.defined() ? out.describe() : "missing"));
    const auto [rows, cols] = rows_cols(out.shape());
    const auto* base = static_cast<const std::uint8_t*>(encoded.raw());
    check_header(name(), base, kParams, cols);
    // scale (C), q (rows, C) -> y (rows, C)
    const float* scale = reinterpret_cast<const float*>(base + kHeaderBytes);
    const auto* q = reinterpret_cast<const std::int8_t*>(base + kHeaderBytes + 4 * cols);
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
  static constexpr std::uint32_t kParams = 8u | (1u << 16);

  void throw_if_non_finite(const Tensor& in, std::int64_t first_bad) const {
    if (first_bad == std::numeric_limits<std::int64_t>::max()) return;
    ops::fail(name(), "cannot encode non-finite element " + std::to_string(first_bad) + " (= " +
                          std::to_string(in.data<float>()[first_bad]) + ") of " + in.describe());
  }
};

// ---------------------------------------------------------------- per-group, outliers

// Where each part of a per-group encoding lies.
struct GroupLayout {
  std::int64_t rows, cols, groups_per_row, groups, row_bytes;
  std::size_t scales, values, indices, packed, total;
};

class GroupCodec final : public Codec {
 public:
  GroupCodec(std::string name, int bits, int k) : name_(std::move(name)), bits_(bits), k_(k) {}

  std::string_view name() const override { return name_; }
  std::size_t encoded_bytes(const Shape& shape) const override { return layout(shape).total; }

  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, name(),
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    const GroupLayout L = layout(in.shape());
    Tensor out = Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(L.total)}, DType::uint8,
                               MemCategory::compressed, in.name() + "." + name_);
    auto* base = static_cast<std::uint8_t*>(out.raw());
    write_header(base, params(), L.cols);
    const float* x = in.data<float>();
    constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();
    std::int64_t first_bad = none, first_overflow = none;
    // x (rows, C) -> per group g: (scale, zero) fp16, k outliers, packed q
#pragma omp parallel for schedule(static) reduction(min : first_bad, first_overflow)
    for (std::int64_t g = 0; g < L.groups; ++g) {
      const std::int64_t r = g / L.groups_per_row, j0 = (g % L.groups_per_row) * kGroup;
      const std::int64_t n = std::min(kGroup, L.cols - j0);
      const float* xg = x + r * L.cols + j0;
      const std::int64_t bad = encode_group(xg, n, base, L, g, r, j0);
      if (bad >= 0) first_bad = std::min(first_bad, r * L.cols + j0 + bad);
      if (bad == -2) first_overflow = std::min(first_overflow, g);
    }
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
    ops::require(out.defined() && out.dtype() == DType::f32 && encoded.defined() &&
                     encoded.dtype() == DType::uint8 &&
                     encoded.nbytes() == encoded_bytes(out.shape()),
                 name(),
                 "cannot decode " + (encoded.defined() ? encoded.describe() : "missing") +
                     " into " + (out.defined() ? out.describe() : "missing"));
    const GroupLayout L = layout(out.shape());
    const auto* base = static_cast<const std::uint8_t*>(encoded.raw());
    check_header(name(), base, params(), L.cols);
    float* y = out.data<float>();
    const int qmax = (1 << bits_) - 1;
    // per group: (scale, zero), packed q, outliers -> y (rows, C)
#pragma omp parallel for schedule(static)
    for (std::int64_t g = 0; g < L.groups; ++g) {
      const std::int64_t r = g / L.groups_per_row, j0 = (g % L.groups_per_row) * kGroup;
      const std::int64_t n = std::min(kGroup, L.cols - j0);
      std::uint16_t sz[2];
      std::memcpy(sz, base + L.scales + 4 * g, 4);
      const float scale = static_cast<float>(h_from_bits(sz[0]));
      const float zero = static_cast<float>(h_from_bits(sz[1]));
      const std::uint8_t* pk = base + L.packed + r * L.row_bytes + j0 * bits_ / 8;
      float* yg = y + r * L.cols + j0;
      const int per_byte = 8 / bits_;
#pragma omp simd
      for (std::int64_t j = 0; j < n; ++j) {
        const int q = (pk[j / per_byte] >> (bits_ * (j % per_byte))) & qmax;
        yg[j] = zero + static_cast<float>(q) * scale;
      }
      for (int s = 0; s < k_; ++s) {
        const std::uint8_t idx = base[L.indices + g * k_ + s];
        if (idx != kUnusedSlot) std::memcpy(&yg[idx], base + L.values + 4 * (g * k_ + s), 4);
      }
    }
  }

 private:
  std::uint32_t params() const {
    return static_cast<std::uint32_t>(bits_) | (static_cast<std::uint32_t>(k_) << 8);
  }

  GroupLayout layout(const Shape& shape) const {
    GroupLayout L{};
    const RowsCols rc = rows_cols(shape);
    L.rows = rc.rows;
    L.cols = rc.cols;
    L.groups_per_row = (rc.cols + kGroup - 1) / kGroup;
    L.groups = L.rows * L.groups_per_row;
    L.row_bytes = (rc.cols * bits_ + 7) / 8;
    const auto ng = static_cast<std::size_t>(L.groups);
    L.scales = kHeaderBytes;
    L.values = L.scales + 4 * ng;
    L.indices = L.values + 4 * ng * k_;
    L.packed = L.indices + ng * k_;
    L.total = L.packed + static_cast<std::size_t>(L.rows * L.row_bytes);
    return L;
  }

  // xg (n <= 64) -> group g's fields in base. Returns -1 when fine, the index in the
  // group of its first non-finite element, or -2 when scale/zero overflow fp16.
  std::int64_t encode_group(const float* xg, std::int64_t n, std::uint8_t* base,
                            const GroupLayout& L, std::int64_t g, std::int64_t r,
                            std::int64_t j0) const {
    bool finite = true;
    double sum = 0.0;
#pragma omp simd reduction(&& : finite) reduction(+ : sum)
    for (std::int64_t j = 0; j < n; ++j) {
      finite = finite && std::abs(xg[j]) <= std::numeric_limits<float>::max();
      sum += xg[j];
    }
    if (!finite) {
      for (std::int64_t j = 0; j < n; ++j) {
        if (!std::isfinite(xg[j])) return j;
      }
    }
    // Outliers: the k elements farthest from the mean, ties to the lowest index.
    const auto mean = static_cast<float>(sum / static_cast<double>(n));
    float dist[kGroup];
#pragma omp simd
    for (std::int64_t j = 0; j < n; ++j) dist[j] = std::abs(xg[j] - mean);
    for (int s = 0; s < k_; ++s) {
      std::uint8_t idx = kUnusedSlot;
      float value = 0.0f, best = -1.0f;
      for (std::int64_t j = 0; j < n; ++j) {
        if (dist[j] > best) {
          best = dist[j];
          idx = static_cast<std::uint8_t>(j);
        }
      }
      if (idx != kUnusedSlot) {
        value = xg[idx];
        dist[idx] = -2.0f;  // taken: below every distance and below `best`'s start
      }
      base[L.indices + g * k_ + s] = idx;
      std::memcpy(base + L.values + 4 * (g * k_ + s), &value, 4);
    }
    // Range of the other elements (dist < 0 marks the outliers).
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
#pragma omp simd reduction(min : lo) reduction(max : hi)
    for (std::int64_t j = 0; j < n; ++j) {
      const bool kept = k_ == 0 || dist[j] >= 0.0f;
      lo = std::min(lo, kept ? xg[j] : lo);
      hi = std::max(hi, kept ? xg[j] : hi);
    }
    if (lo > hi) lo = hi = 0.0f;  // every element is an outlier
    const int qmax = (1 << bits_) - 1;
    const _Float16 zero_h = f16_round_down(lo);
    const _Float16 scale_h =
        f16_round_up((static_cast<double>(hi) - static_cast<double>(zero_h)) / qmax);
    const std::uint16_t sz[2] = {h_bits(scale_h), h_bits(zero_h)};
    std::memcpy(base + L.scales + 4 * g, sz, 4);
    const float zero = static_cast<float>(zero_h), scale = static_cast<float>(scale_h);
    const bool overflow = !std::isfinite(zero) || !std::isfinite(scale);
    // Quantize and pack (outlier positions are quantized too; decode overwrites them).
    std::uint8_t q[kGroup];
#pragma omp simd
    for (std::int64_t j = 0; j < n; ++j) {
      const float t = scale > 0.0f ? std::floor((xg[j] - zero) / scale + 0.5f) : 0.0f;
      q[j] = static_cast<std::uint8_t>(std::clamp(t, 0.0f, static_cast<float>(qmax)));
    }
    std::uint8_t* pk = base + L.packed + r * L.row_bytes + j0 * bits_ / 8;
    const int per_byte = 8 / bits_;
    const std::int64_t nbytes = (n * bits_ + 7) / 8;
    for (std::int64_t b = 0; b < nbytes; ++b) {
      std::uint8_t byte = 0;
      for (int e = 0; e < per_byte; ++e) {
        const std::int64_t j = b * per_byte + e;
        if (j < n) byte = static_cast<std::uint8_t>(byte | (q[j] << (bits_ * e)));
      }
      pk[b] = byte;
    }
    return overflow ? -2 : -1;
  }

  std::string name_;
  int bits_, k_;
};

}  // namespace

std::vector<std::unique_ptr<Codec>> int_codecs() {
  std::vector<std::unique_ptr<Codec>> codecs;
  codecs.push_back(std::make_unique<Int8ChannelCodec>());
  codecs.push_back(std::make_unique<GroupCodec>("int8-g64", 8, 0));
  codecs.push_back(std::make_unique<GroupCodec>("int4-g64", 4, 2));
  codecs.push_back(std::make_unique<GroupCodec>("int4-g64-naive", 4, 0));
  codecs.push_back(std::make_unique<GroupCodec>("int2-g64", 2, 4));
  return codecs;
}

}  // namespace adacc::compress
