// The codecs as CUDA kernels (see adacc/compress/cuda_codecs.h). Each writes exactly the
// bytes of the CPU codec of the same name (the formats are documented beside the CPU
// kernels: float_codecs.cpp, int_codecs.cpp, softmax_codec.cpp, gelu_codec.cpp), using the
// same arithmetic in the same order wherever rounding depends on it:
//   - per-group sums in double, lanes of 8 then lane by lane, as group_sum;
//   - fp16 scale/zero by directed rounding (__float2half_rd/_ru, __double2float_ru);
//   - quotients by IEEE division, round to nearest even by rintf, decode as fma.
// A warp handles one group (int codecs) or one row (softmax); the elementwise codecs use
// one thread per element (per output byte for 4-bit packing). Errors found on the device
// (the first non-finite element, the first group beyond fp16, a probability outside
// [0,1]) are reduced with atomicMin into a small device buffer and raised after the kernel
// as the CPU codec raises them.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "../group_format.h"
#include "adacc/compress/codec.h"
#include "adacc/compress/cuda_codecs.h"
#include "adacc/core/error.h"
#include "adacc/ops/gelu_math.h"

namespace adacc::compress::cuda {

namespace {

using u8 = std::uint8_t;
using u32 = std::uint32_t;
using u64 = unsigned long long;
constexpr u64 kNone = ~0ull;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw BackendError(std::string("[codec] CUDA ") + what + ": " + cudaGetErrorString(err));
  }
}

void sync_or_throw() {
  check(cudaGetLastError(), "kernel launch");
  check(cudaDeviceSynchronize(), "kernel");
}

float element_at(const float* d_in, u64 i) {
  float v = 0;
  check(cudaMemcpy(&v, d_in + i, 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
  return v;
}

[[noreturn]] void fail_non_finite(std::string_view codec, const float* d_in, u64 i,
                                  const Shape& shape) {
  throw InvalidArgument("[" + std::string(codec) + "] cannot encode non-finite element " +
                        std::to_string(i) + " (= " + std::to_string(element_at(d_in, i)) +
                        ") of a " + shape_str(shape) + " f32 tensor on the GPU");
}

constexpr int kThreads = 256;
unsigned blocks_for(std::int64_t n, int per_block = kThreads) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

// Writes a 16-byte header (4 words) on the device, without a host round trip.
__global__ void header_kernel(u32* out, u32 h0, u32 h1, u32 h2, u32 h3) {
  out[0] = h0, out[1] = h1, out[2] = h2, out[3] = h3;
}
void write_header(void* d_out, u32 h0, u32 h1, u32 h2, u32 h3) {
  header_kernel<<<1, 1>>>(static_cast<u32*>(d_out), h0, h1, h2, h3);
}

// ---------------------------------------------------------------- bf16

// x (n) -> out (n) bf16 bits, round to nearest even, NaN kept quiet.
__global__ void bf16_encode_kernel(const float* x, std::uint16_t* out, std::int64_t n) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const u32 u = __float_as_uint(x[i]);
  const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
  const u32 rounded = u + 0x7FFFu + ((u >> 16) & 1u);
  out[i] = static_cast<std::uint16_t>(nan ? (u >> 16) | 0x40u : rounded >> 16);
}

__global__ void bf16_decode_kernel(const std::uint16_t* in, float* y, std::int64_t n) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] = __uint_as_float(static_cast<u32>(in[i]) << 16);
}

// ---------------------------------------------------------------- fp8 e4m3

constexpr u32 kFp8Magic = 0x38464441u;
constexpr float kFp8Max = 448.0f;

// max |x| over x (n) (as float bits: non-negative floats order as integers) and the first
// non-finite index.
__global__ void amax_kernel(const float* x, std::int64_t n, u32* amax_bits, u64* bad) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  float a = 0.0f;
  if (i < n) {
    const float v = x[i];
    if (!isfinite(v)) atomicMin(bad, static_cast<u64>(i));
    a = fabsf(v);
  }
  for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xFFFFFFFFu, a, o));
  if ((threadIdx.x & 31) == 0 && a > 0.0f && isfinite(a)) atomicMax(amax_bits, __float_as_uint(a));
}

// amax bits -> the fp8 header (magic, scale = amax / 448, or 1 when that is not > 0).
__global__ void fp8_header_kernel(const u32* amax_bits, u8* out) {
  float scale = __fdiv_rn(__uint_as_float(*amax_bits), kFp8Max);
  if (!(scale > 0.0f)) scale = 1.0f;
  const u32 magic = kFp8Magic;
  memcpy(out, &magic, 4);
  memcpy(out + 4, &scale, 4);
}

__global__ void fp8_encode_kernel(const float* x, const float* scale_p, u8* out, std::int64_t n) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float scale = *scale_p;
  const float y = fminf(fabsf(__fdiv_rn(x[i], scale)), kFp8Max);
  const u32 u = __float_as_uint(y), s = __float_as_uint(x[i]);
  const u32 normal = ((u + 0x7FFFFu + ((u >> 20) & 1u)) >> 20) - (120u << 3);
  const auto sub = static_cast<u32>(rintf(__fmul_rn(y, 512.0f)));
  const u32 code = min(y >= 0.015625f ? normal : sub, 0x7Eu);
  out[i] = static_cast<u8>(code | ((s >> 24) & 0x80u));
}

__global__ void fp8_decode_kernel(const u8* in, const float* scale_p, float* y, std::int64_t n) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float scale = *scale_p;
  const u32 c = in[i], e = (c >> 3) & 15u, m = c & 7u;
  float v;
  if (e == 15u && m == 7u) {
    v = __int_as_float(0x7FC00000);
  } else {
    v = e == 0u ? ldexpf(static_cast<float>(m), -9)
                : ldexpf(1.0f + static_cast<float>(m) / 8.0f, static_cast<int>(e) - 7);
  }
  y[i] = __fmul_rn((c & 0x80u) ? -v : v, scale);
}

// ---------------------------------------------------------------- int8 per channel

// x (rows, C) -> scale (C) = max_r |x| / 127; a thread per column.
__global__ void channel_scale_kernel(const float* x, std::int64_t rows, std::int64_t cols,
                                     float* scale, u64* bad) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (c >= cols) return;
  float m = 0.0f;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float v = x[r * cols + c];
    if (!isfinite(v)) atomicMin(bad, static_cast<u64>(r * cols + c));
    m = fmaxf(m, fabsf(v));
  }
  scale[c] = __fdiv_rn(m, 127.0f);
}

__global__ void channel_quant_kernel(const float* x, const float* scale, std::int64_t n,
                                     std::int64_t cols, signed char* q) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float s = scale[i % cols];
  const float t = s > 0.0f ? rintf(__fdiv_rn(x[i], s)) : 0.0f;
  q[i] = static_cast<signed char>(t < -127.0f ? -127.0f : (t > 127.0f ? 127.0f : t));
}

__global__ void channel_dequant_kernel(const signed char* q, const float* scale, std::int64_t n,
                                       std::int64_t cols, float* y) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] = __fmul_rn(static_cast<float>(q[i]), scale[i % cols]);
}

// ---------------------------------------------------------------- per group, outliers

__device__ u32 hash_bits(u32 i, u32 salt) {
  u32 h = i * 0x9E3779B9u ^ salt;
  h ^= h >> 16;
  h *= 0x7FEB352Du;
  h ^= h >> 15;
  h *= 0x846CA68Bu;
  h ^= h >> 16;
  return h;
}

// One warp per group. Lane l holds elements j = l + 32 e (e < Group/32) of the group.
template <int Bits, int K, int Group, bool Stochastic>
__global__ void group_encode_kernel(const float* x, u8* base, GroupLayout L, u64* bad,
                                    u64* overflow) {
  constexpr int kPer = Group / 32;
  constexpr int kQmax = (1 << Bits) - 1;
  constexpr int kPerByte = 8 / Bits;
  constexpr unsigned kAll = 0xFFFFFFFFu;
  __shared__ u8 qs[kThreads / 32][Group];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t g = blockIdx.x * static_cast<std::int64_t>(kThreads / 32) + warp;
  if (g >= L.groups) return;
  const std::int64_t r = g / L.groups_per_row, j0 = (g % L.groups_per_row) * Group;
  const int n = static_cast<int>(min(static_cast<std::int64_t>(Group), L.cols - j0));
  const float* xg = x + r * L.cols + j0;
  const std::int64_t first = r * L.cols + j0;

  float v[kPer];
  bool finite = true;
  for (int e = 0; e < kPer; ++e) {
    const int j = lane + 32 * e;
    v[e] = j < n ? xg[j] : 0.0f;
    if (j < n && !isfinite(v[e])) {
      finite = false;
      atomicMin(bad, static_cast<u64>(first + j));
    }
  }
  if (__any_sync(kAll, !finite)) return;  // the host raises the error; the bytes don't matter

  // group_sum's order: the tail (n % 8 elements past the last chunk of 8) first, then
  // eight double lanes, lane e summing elements 8c + e in order of c.
  double acc = 0.0;
  const int full = n / 8 * 8;
  if (lane < 8) {
    for (int j = lane; j < full; j += 8) acc += static_cast<double>(xg[j]);
  }
  double sum = 0.0;
  for (int j = full; j < n; ++j) sum += static_cast<double>(xg[j]);
  for (int e = 0; e < 8; ++e) sum += __shfl_sync(kAll, acc, e);

  float dist[kPer];
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  for (int e = 0; e < kPer; ++e) {
    dist[e] = (lane + 32 * e < n && K > 0) ? fabsf(v[e] - mean) : -1.0f;
  }
  for (int s = 0; s < K; ++s) {
    // The largest distance, ties to the lowest index; -1 marks taken or absent elements.
    float best = -1.0f;
    int at = 1 << 30;
    for (int e = 0; e < kPer; ++e) {
      if (dist[e] > best) best = dist[e], at = lane + 32 * e;  // e ascending: lowest index wins
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float b2 = __shfl_xor_sync(kAll, best, o);
      const int a2 = __shfl_xor_sync(kAll, at, o);
      if (b2 > best || (b2 == best && a2 < at)) best = b2, at = a2;
    }
    const bool found = best >= 0.0f;
    if (lane == 0) {
      base[L.indices + g * K + s] = found ? static_cast<u8>(at) : kUnusedOutlierSlot;
      const float value = found ? xg[at] : 0.0f;
      memcpy(base + L.values + 4 * (g * K + s), &value, 4);
    }
    if (found && at % 32 == lane) dist[at / 32] = -1.0f;
  }
  // Range of the kept elements (all of them when K = 0).
  float lo = INFINITY, hi = -INFINITY;
  for (int e = 0; e < kPer; ++e) {
    const bool kept = lane + 32 * e < n && (K == 0 || dist[e] >= 0.0f);
    if (kept) lo = fminf(lo, v[e]), hi = fmaxf(hi, v[e]);
  }
  for (int o = 16; o > 0; o >>= 1) {
    lo = fminf(lo, __shfl_xor_sync(kAll, lo, o));
    hi = fmaxf(hi, __shfl_xor_sync(kAll, hi, o));
  }
  if (lo > hi) lo = hi = 0.0f;
  const __half zero_h = __float2half_rd(lo);
  const float zero = __half2float(zero_h);
  const double span = (static_cast<double>(hi) - static_cast<double>(zero)) / kQmax;
  const __half scale_h = __float2half_ru(__double2float_ru(span));
  const float scale = __half2float(scale_h);
  const std::uint16_t zero_bits = __half_as_ushort(zero_h), scale_bits = __half_as_ushort(scale_h);
  if (lane == 0) {
    const std::uint16_t sz[2] = {scale_bits, zero_bits};
    memcpy(base + L.scales + 4 * g, sz, 4);
    if (!isfinite(zero) || !isfinite(scale)) atomicMin(overflow, static_cast<u64>(g));
  }
  const float inv_ok = scale > 0.0f ? 1.0f : 0.0f;
  const float div = scale > 0.0f ? scale : 1.0f;
  const u32 salt = static_cast<u32>(scale_bits) << 16 | zero_bits;
  for (int e = 0; e < kPer; ++e) {
    const int j = lane + 32 * e;
    float t = __fdiv_rn(v[e] - zero, div);
    if constexpr (Stochastic) {
      const float u =
          static_cast<float>(hash_bits(static_cast<u32>(first + j), salt) >> 8) * 0x1.0p-24f;
      t = inv_ok * floorf(__fadd_rn(t, u));
    } else {
      t = inv_ok * rintf(t);
    }
    const float c = t < 0.0f ? 0.0f : (t > kQmax ? static_cast<float>(kQmax) : t);
    qs[warp][j] = j < n ? static_cast<u8>(c) : 0;
  }
  __syncwarp();
  u8* pk = base + L.packed + r * L.row_bytes + j0 * Bits / 8;
  const int nbytes = (n * Bits + 7) / 8;
  for (int b = lane; b < nbytes; b += 32) {
    unsigned byte = 0;
    for (int e = 0; e < kPerByte; ++e)
      byte |= static_cast<unsigned>(qs[warp][b * kPerByte + e]) << (Bits * e);
    pk[b] = static_cast<u8>(byte);
  }
}

template <int Bits, int K, int Group>
__global__ void group_decode_kernel(const u8* base, float* y, GroupLayout L) {
  constexpr int kQmax = (1 << Bits) - 1;
  constexpr int kPerByte = 8 / Bits;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t g = blockIdx.x * static_cast<std::int64_t>(kThreads / 32) + warp;
  if (g >= L.groups) return;
  const std::int64_t r = g / L.groups_per_row, j0 = (g % L.groups_per_row) * Group;
  const int n = static_cast<int>(min(static_cast<std::int64_t>(Group), L.cols - j0));
  std::uint16_t sz[2];
  memcpy(sz, base + L.scales + 4 * g, 4);
  const float scale = __half2float(__ushort_as_half(sz[0]));
  const float zero = __half2float(__ushort_as_half(sz[1]));
  const u8* pk = base + L.packed + r * L.row_bytes + j0 * Bits / 8;
  float* yg = y + r * L.cols + j0;
  for (int j = lane; j < n; j += 32) {
    const unsigned q = (pk[j / kPerByte] >> (Bits * (j % kPerByte))) & kQmax;
    yg[j] = __fmaf_rn(static_cast<float>(q), scale, zero);
  }
  __syncwarp();
  if (lane < K) {
    const u8 idx = base[L.indices + g * K + lane];
    if (idx != kUnusedOutlierSlot) memcpy(&yg[idx], base + L.values + 4 * (g * K + lane), 4);
  }
}

// ---------------------------------------------------------------- softmax-u8

constexpr u32 kSoftmaxMagic = 0x4D534441u;  // "ADSM"
constexpr u32 kSoftmaxParams = 8u | 1u << 8;

__host__ __device__ std::int64_t triangle(std::int64_t t) {
  return t * (t + 1) / 2;
}

// One warp per row (m, i) of p (M,T,T): its maximum and its i+1 stored bytes.
__global__ void softmax_encode_kernel(const float* p, std::int64_t rows, std::int64_t t,
                                      float* rowmax, u8* q, u64* bad) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t r = blockIdx.x * static_cast<std::int64_t>(kThreads / 32) + warp;
  if (r >= rows) return;
  const std::int64_t m = r / t, i = r % t;
  const float* pr = p + r * t;
  float mx = 0.0f;
  for (std::int64_t j = lane; j <= i; j += 32) {
    const float v = pr[j];
    if (!(v >= 0.0f && v <= 1.0f)) atomicMin(bad, static_cast<u64>(r * t + j));
    mx = fmaxf(mx, v);
  }
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, o));
  if (lane == 0) rowmax[r] = mx;
  const float mul = mx > 0.0f ? __fdiv_rn(255.0f, mx) : 0.0f;
  u8* qr = q + m * triangle(t) + triangle(i);
  for (std::int64_t j = lane; j <= i; j += 32) {
    const float s = rintf(__fmul_rn(pr[j], mul));
    qr[j] = static_cast<u8>(s > 0.0f ? (s < 255.0f ? s : 255.0f) : 0.0f);
  }
}

__global__ void softmax_decode_kernel(const float* rowmax, const u8* q, std::int64_t rows,
                                      std::int64_t t, float* y) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t r = blockIdx.x * static_cast<std::int64_t>(kThreads / 32) + warp;
  if (r >= rows) return;
  const std::int64_t m = r / t, i = r % t;
  const u8* qr = q + m * triangle(t) + triangle(i);
  const float mx = rowmax[r];
  for (std::int64_t j = lane; j < t; j += 32) {
    y[r * t + j] = j <= i ? __fdiv_rn(__fmul_rn(static_cast<float>(qr[j]), mx), 255.0f) : 0.0f;
  }
}

// ---------------------------------------------------------------- GELU derivative

constexpr u32 kGeluMagic = 0x44474441u;  // "ADGD"

// A thread per output byte: x (n) -> packed q (ceil(n * Bits / 8)).
template <int Bits>
__global__ void gelu_encode_kernel(const float* x, std::int64_t n, u8* pk, u64* bad) {
  constexpr int kPerByte = 8 / Bits;
  constexpr int kQmax = (1 << Bits) - 1;
  constexpr float kLo = ops::gelu_math::kDerivativeMin;
  constexpr float kStep = (ops::gelu_math::kDerivativeMax - kLo) / kQmax;
  const std::int64_t b = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (b * kPerByte >= n) return;
  unsigned byte = 0;
  for (int e = 0; e < kPerByte; ++e) {
    const std::int64_t i = b * kPerByte + e;
    if (i >= n) break;
    const float v = x[i];
    if (!isfinite(v)) atomicMin(bad, static_cast<u64>(i));
    const float d = ops::gelu_math::gelu_derivative(v);
    const float t = rintf(__fdiv_rn(d - kLo, kStep));
    const float c = t < 0.0f ? 0.0f : (t > kQmax ? static_cast<float>(kQmax) : t);
    byte |= static_cast<unsigned>(c) << (Bits * e);
  }
  pk[b] = static_cast<u8>(byte);
}

template <int Bits>
__global__ void gelu_decode_kernel(const u8* pk, std::int64_t n, float* y) {
  constexpr int kPerByte = 8 / Bits;
  constexpr int kQmax = (1 << Bits) - 1;
  constexpr float kLo = ops::gelu_math::kDerivativeMin;
  constexpr float kStep = (ops::gelu_math::kDerivativeMax - kLo) / kQmax;
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const unsigned q = (pk[i / kPerByte] >> (Bits * (i % kPerByte))) & kQmax;
  y[i] = __fmaf_rn(static_cast<float>(q), kStep, kLo);
}

// ---------------------------------------------------------------- dispatch

struct GroupSpec {
  const char* name;
  int bits, k, group;
  bool stochastic;
};
constexpr GroupSpec kGroupSpecs[] = {
    {"int8-g64", 8, 0, 64, false},   {"int8-g128", 8, 0, 128, false},
    {"int4-g64", 4, 2, 64, false},   {"int4-g128", 4, 2, 128, false},
    {"int4-g64-sr", 4, 2, 64, true}, {"int4-g64-naive", 4, 0, 64, false},
    {"int2-g64", 2, 4, 64, false},   {"int2-g128", 2, 4, 128, false},
    {"int2-g64-sr", 2, 4, 64, true},
};

const GroupSpec* group_spec(std::string_view name) {
  for (const GroupSpec& s : kGroupSpecs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

template <int Bits, int K, int Group, bool Sr>
void launch_group_encode(const float* in, u8* out, const GroupLayout& L, u64* bad, u64* overflow) {
  if (L.groups == 0) return;
  group_encode_kernel<Bits, K, Group, Sr>
      <<<blocks_for(L.groups, kThreads / 32), kThreads>>>(in, out, L, bad, overflow);
}
template <int Bits, int K, int Group>
void launch_group_decode(const u8* in, float* out, const GroupLayout& L) {
  if (L.groups == 0) return;
  group_decode_kernel<Bits, K, Group>
      <<<blocks_for(L.groups, kThreads / 32), kThreads>>>(in, out, L);
}

// The compile-time parameters of each group codec.
void group_encode(const GroupSpec& s, const float* in, u8* out, const GroupLayout& L, u64* bad,
                  u64* ovf) {
  const std::string_view n = s.name;
  if (n == "int8-g64") return launch_group_encode<8, 0, 64, false>(in, out, L, bad, ovf);
  if (n == "int8-g128") return launch_group_encode<8, 0, 128, false>(in, out, L, bad, ovf);
  if (n == "int4-g64") return launch_group_encode<4, 2, 64, false>(in, out, L, bad, ovf);
  if (n == "int4-g128") return launch_group_encode<4, 2, 128, false>(in, out, L, bad, ovf);
  if (n == "int4-g64-sr") return launch_group_encode<4, 2, 64, true>(in, out, L, bad, ovf);
  if (n == "int4-g64-naive") return launch_group_encode<4, 0, 64, false>(in, out, L, bad, ovf);
  if (n == "int2-g64") return launch_group_encode<2, 4, 64, false>(in, out, L, bad, ovf);
  if (n == "int2-g128") return launch_group_encode<2, 4, 128, false>(in, out, L, bad, ovf);
  if (n == "int2-g64-sr") return launch_group_encode<2, 4, 64, true>(in, out, L, bad, ovf);
}
void group_decode(const GroupSpec& s, const u8* in, float* out, const GroupLayout& L) {
  switch (s.bits * 1000 + s.k * 10 + s.group / 64) {
    case 8001:
      return launch_group_decode<8, 0, 64>(in, out, L);
    case 8002:
      return launch_group_decode<8, 0, 128>(in, out, L);
    case 4021:
      return launch_group_decode<4, 2, 64>(in, out, L);
    case 4022:
      return launch_group_decode<4, 2, 128>(in, out, L);
    case 4001:
      return launch_group_decode<4, 0, 64>(in, out, L);
    case 2041:
      return launch_group_decode<2, 4, 64>(in, out, L);
    case 2042:
      return launch_group_decode<2, 4, 128>(in, out, L);
    default:
      throw BackendError("[codec] " + std::string(s.name) + " has no CUDA decode kernel");
  }
}

u32 group_params(const GroupSpec& s) {
  return int_codec_params(s.bits, s.k, false, s.stochastic);
}

bool is_gelu(std::string_view name) {
  return name == "gelu-deriv-u8" || name == "gelu-deriv-u4";
}

}  // namespace

bool device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  check(cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes), "cudaMalloc");
}
DeviceBuffer::~DeviceBuffer() {
  cudaFree(ptr_);
}
void DeviceBuffer::upload(const void* host, std::size_t bytes) {
  check(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to the device");
}
void DeviceBuffer::download(void* host, std::size_t bytes) const {
  check(cudaMemcpy(host, ptr_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy from the device");
}

void DeviceBuffer::copy_async(const DeviceBuffer& from, std::size_t bytes) {
  check(cudaMemcpyAsync(ptr_, from.data(), bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
}

// Device scratch: slot 0 the first bad element, slot 1 the first overflowing group, slot 2
// fp8's max |x| bits.
struct CudaCodecs::Impl {
  DeviceBuffer scratch{3 * sizeof(u64)};
  u64* bad() const { return static_cast<u64*>(scratch.data()); }
  u64* overflow() const { return bad() + 1; }
  u32* amax() const { return reinterpret_cast<u32*>(bad() + 2); }
};

CudaCodecs::CudaCodecs() {
  if (!device_available()) {
    throw BackendError("[codec] no CUDA device is available (cudaGetDeviceCount found none)");
  }
  impl_ = std::make_unique<Impl>();
}
CudaCodecs::~CudaCodecs() = default;

void CudaCodecs::encode_async(std::string_view name, const float* in, const Shape& shape,
                              void* out_v) {
  const Codec& codec = codec_by_name(name);  // unknown names throw, listing the known ones
  codec.encoded_bytes(shape);                // shapes the codec rejects throw
  auto* out = static_cast<u8*>(out_v);
  const std::int64_t n = shape_numel(shape);
  u64* bad = impl_->bad();
  if (name == "bf16") {
    if (n > 0)
      bf16_encode_kernel<<<blocks_for(n), kThreads>>>(in, reinterpret_cast<std::uint16_t*>(out), n);
  } else if (name == "fp8-e4m3") {
    cudaMemsetAsync(impl_->amax(), 0, 4);
    if (n > 0) amax_kernel<<<blocks_for(n), kThreads>>>(in, n, impl_->amax(), bad);
    fp8_header_kernel<<<1, 1>>>(impl_->amax(), out);
    if (n > 0) {
      fp8_encode_kernel<<<blocks_for(n), kThreads>>>(in, reinterpret_cast<const float*>(out + 4),
                                                     out + 8, n);
    }
  } else if (name == "int8-channel") {
    const std::int64_t cols = shape.empty() ? 1 : shape.back();
    const std::int64_t rows = cols == 0 ? 0 : n / cols;
    write_header(out, kIntCodecMagic, int_codec_params(8, 0, true, false), static_cast<u32>(cols),
                 0);
    auto* scale = reinterpret_cast<float*>(out + 16);
    if (cols > 0) channel_scale_kernel<<<blocks_for(cols), kThreads>>>(in, rows, cols, scale, bad);
    if (n > 0) {
      channel_quant_kernel<<<blocks_for(n), kThreads>>>(
          in, scale, n, cols, reinterpret_cast<signed char*>(out + 16 + 4 * cols));
    }
  } else if (const GroupSpec* s = group_spec(name)) {
    const GroupLayout L = group_layout(shape, s->bits, s->k, s->group);
    write_header(out, kIntCodecMagic, group_params(*s), static_cast<u32>(L.cols),
                 static_cast<u32>(s->group));
    group_encode(*s, in, out, L, bad, impl_->overflow());
  } else if (name == "softmax-u8") {
    const std::int64_t t = shape.back(), rows = t == 0 ? 0 : n / t;
    write_header(out, kSoftmaxMagic, kSoftmaxParams, static_cast<u32>(t), 0);
    if (rows > 0) {
      softmax_encode_kernel<<<blocks_for(rows, kThreads / 32), kThreads>>>(
          in, rows, t, reinterpret_cast<float*>(out + 16), out + 16 + 4 * rows, bad);
    }
  } else if (is_gelu(name)) {
    const u32 bits = name == "gelu-deriv-u8" ? 8 : 4;
    write_header(out, kGeluMagic, bits, static_cast<u32>(n), 0);
    const std::int64_t nbytes = (n * bits + 7) / 8;
    if (nbytes > 0 && bits == 8) {
      gelu_encode_kernel<8><<<blocks_for(nbytes), kThreads>>>(in, n, out + 16, bad);
    } else if (nbytes > 0) {
      gelu_encode_kernel<4><<<blocks_for(nbytes), kThreads>>>(in, n, out + 16, bad);
    }
  } else {
    throw BackendError("[codec] " + std::string(name) + " has no CUDA kernel");
  }
}

void CudaCodecs::decode_async(std::string_view name, const void* in_v, const Shape& shape,
                              float* out) {
  codec_by_name(name);
  const auto* in = static_cast<const u8*>(in_v);
  const std::int64_t n = shape_numel(shape);
  if (name == "bf16") {
    if (n > 0) {
      bf16_decode_kernel<<<blocks_for(n), kThreads>>>(reinterpret_cast<const std::uint16_t*>(in),
                                                      out, n);
    }
  } else if (name == "fp8-e4m3") {
    if (n > 0) {
      fp8_decode_kernel<<<blocks_for(n), kThreads>>>(in + 8, reinterpret_cast<const float*>(in + 4),
                                                     out, n);
    }
  } else if (name == "int8-channel") {
    const std::int64_t cols = shape.empty() ? 1 : shape.back();
    if (n > 0) {
      channel_dequant_kernel<<<blocks_for(n), kThreads>>>(
          reinterpret_cast<const signed char*>(in + 16 + 4 * cols),
          reinterpret_cast<const float*>(in + 16), n, cols, out);
    }
  } else if (const GroupSpec* s = group_spec(name)) {
    group_decode(*s, in, out, group_layout(shape, s->bits, s->k, s->group));
  } else if (name == "softmax-u8") {
    const std::int64_t t = shape.empty() ? 0 : shape.back(), rows = t == 0 ? 0 : n / t;
    if (rows > 0) {
      softmax_decode_kernel<<<blocks_for(rows, kThreads / 32), kThreads>>>(
          reinterpret_cast<const float*>(in + 16), in + 16 + 4 * rows, rows, t, out);
    }
  } else if (is_gelu(name)) {
    if (n > 0 && name == "gelu-deriv-u8") {
      gelu_decode_kernel<8><<<blocks_for(n), kThreads>>>(in + 16, n, out);
    } else if (n > 0) {
      gelu_decode_kernel<4><<<blocks_for(n), kThreads>>>(in + 16, n, out);
    }
  } else {
    throw BackendError("[codec] " + std::string(name) + " has no CUDA kernel");
  }
}

void CudaCodecs::encode(std::string_view name, const float* in, const Shape& shape, void* out) {
  check(cudaMemset(impl_->bad(), 0xFF, 2 * sizeof(u64)), "cudaMemset");
  encode_async(name, in, shape, out);
  sync_or_throw();
  u64 slots[2];
  check(cudaMemcpy(slots, impl_->bad(), sizeof slots, cudaMemcpyDeviceToHost), "cudaMemcpy");
  const std::string tensor = "a " + shape_str(shape) + " f32 tensor on the GPU";
  if (slots[0] != kNone && name == "softmax-u8") {
    throw InvalidArgument("[softmax-u8] cannot encode element " + std::to_string(slots[0]) +
                          " (= " + std::to_string(element_at(in, slots[0])) + ") of " + tensor +
                          ": probabilities must lie in [0,1]");
  }
  if (slots[0] != kNone) fail_non_finite(name, in, slots[0], shape);
  if (slots[1] != kNone) {
    throw InvalidArgument("[" + std::string(name) + "] group " + std::to_string(slots[1]) + " of " +
                          tensor + " has values beyond the fp16 range of its scale/zero");
  }
}

void CudaCodecs::decode(std::string_view name, const void* in, const Shape& shape, float* out) {
  // The header, as the CPU codec checks it.
  const Codec& codec = codec_by_name(name);
  const std::int64_t n = shape_numel(shape);
  const auto mismatch = [&] {
    return InvalidArgument("[" + std::string(name) +
                           "] encoded header does not match this codec and shape");
  };
  if (name == "fp8-e4m3") {
    u32 magic = 0;
    check(cudaMemcpy(&magic, in, 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
    if (magic != kFp8Magic) throw mismatch();
  } else if (name != "bf16") {
    u32 h[4];
    check(cudaMemcpy(h, in, sizeof h, cudaMemcpyDeviceToHost), "cudaMemcpy");
    const std::int64_t last = shape.empty() ? 1 : shape.back();
    u32 want[4] = {0, 0, 0, 0};
    if (name == "int8-channel") {
      want[0] = kIntCodecMagic, want[1] = int_codec_params(8, 0, true, false),
      want[2] = static_cast<u32>(last);
    } else if (const GroupSpec* s = group_spec(name)) {
      want[0] = kIntCodecMagic, want[1] = group_params(*s), want[2] = static_cast<u32>(last);
      want[3] = static_cast<u32>(s->group);
    } else if (name == "softmax-u8") {
      codec.encoded_bytes(shape);
      want[0] = kSoftmaxMagic, want[1] = kSoftmaxParams, want[2] = static_cast<u32>(last);
    } else if (is_gelu(name)) {
      want[0] = kGeluMagic, want[1] = name == "gelu-deriv-u8" ? 8 : 4;
      want[2] = static_cast<u32>(n);
    }
    if (std::memcmp(h, want, sizeof h) != 0) throw mismatch();
  }
  decode_async(name, in, shape, out);
  sync_or_throw();
}

double CudaCodecs::milliseconds(const std::function<void()>& launches, int reps) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  check(cudaEventRecord(start), "cudaEventRecord");
  for (int r = 0; r < reps; ++r) launches();
  check(cudaEventRecord(stop), "cudaEventRecord");
  check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  check(cudaGetLastError(), "kernel launch");
  return static_cast<double>(ms) / reps;
}

}  // namespace adacc::compress::cuda
