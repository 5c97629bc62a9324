// Each codec family's instances, for the registry (codec_registry.cpp).
#pragma once

#include <memory>
#include <vector>

#include "adacc/compress/codec.h"

namespace adacc::compress {

// Throws InvalidArgument unless `encoded` is a uint8 buffer of exactly the size `codec`
// encodes an f32 tensor of out's shape into, and `out` is that f32 tensor.
void require_decodable(const Codec& codec, const Tensor& encoded, const Tensor& out);

// bf16, fp8-e4m3 (float_codecs.cpp).
std::vector<std::unique_ptr<Codec>> float_codecs();
// int8-channel, int8-g64/g128, int4-g64/g128/-sr/-naive, int2-g64/g128/-sr (int_codecs.cpp).
std::vector<std::unique_ptr<Codec>> int_codecs();
// softmax-u8 (softmax_codec.cpp).
std::vector<std::unique_ptr<Codec>> softmax_codecs();
// gelu-deriv-u8, gelu-deriv-u4 (gelu_codec.cpp).
std::vector<std::unique_ptr<Codec>> gelu_codecs();

}  // namespace adacc::compress
