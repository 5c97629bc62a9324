// The byte layout of the per-group integer codecs (int<b>-g<S>[-naive|-sr], documented at
// the top of int_codecs.cpp), shared by the CPU kernels and the CUDA kernels
// (cuda/codec_kernels.cu) so that both write the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "adacc/core/tensor.h"

namespace adacc::compress {

inline constexpr std::uint32_t kIntCodecMagic = 0x43494441u;  // "ADIC"
inline constexpr std::size_t kIntCodecHeaderBytes = 16;
inline constexpr std::uint8_t kUnusedOutlierSlot = 255;

// The header's params word: bits | k << 8 | symmetric << 16 | stochastic << 17.
inline constexpr std::uint32_t int_codec_params(int bits, int k, bool symmetric, bool stochastic) {
  return static_cast<std::uint32_t>(bits) | static_cast<std::uint32_t>(k) << 8 |
         static_cast<std::uint32_t>(symmetric) << 16 | static_cast<std::uint32_t>(stochastic) << 17;
}

// Where each part of a per-group encoding lies, for an f32 tensor viewed as (rows, cols)
// with cols its last dimension (a 0-d tensor is (1,1)).
struct GroupLayout {
  std::int64_t rows, cols, groups_per_row, groups, row_bytes;
  std::size_t scales, values, indices, packed, total;
};

inline GroupLayout group_layout(const Shape& shape, int bits, int k, std::int64_t group) {
  GroupLayout L{};
  L.cols = shape.empty() ? 1 : shape.back();
  L.rows = shape.empty() ? 1 : (L.cols == 0 ? 0 : shape_numel(shape) / L.cols);
  L.groups_per_row = (L.cols + group - 1) / group;
  L.groups = L.rows * L.groups_per_row;
  L.row_bytes = (L.cols * bits + 7) / 8;
  const auto ng = static_cast<std::size_t>(L.groups);
  L.scales = kIntCodecHeaderBytes;
  L.values = L.scales + 4 * ng;
  L.indices = L.values + 4 * ng * static_cast<std::size_t>(k);
  L.packed = L.indices + ng * static_cast<std::size_t>(k);
  L.total = L.packed + static_cast<std::size_t>(L.rows * L.row_bytes);
  return L;
}

}  // namespace adacc::compress
