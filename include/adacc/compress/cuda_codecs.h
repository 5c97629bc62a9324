// The codecs on a CUDA device (compress/cuda/codec_kernels.cu): the same encodings, byte
// for byte, as the CPU codecs of the same names (codec.h), so that either side can decode
// what the other encoded. Built when CMake finds nvcc (ADACC_CUDA); without it, or
// without a GPU, device_available() is false and constructing CudaCodecs or a
// DeviceBuffer throws BackendError.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adacc/core/tensor.h"

namespace adacc::compress::cuda {

// Whether this build has the CUDA codecs and a CUDA device is present.
bool device_available();

// Device memory, RAII.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes);
  // NOLINTNEXTLINE(performance-trivially-destructible): defaulted only in the build without CUDA
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* data() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  void upload(const void* host, std::size_t bytes);
  void download(void* host, std::size_t bytes) const;
  // A device-to-device copy of `bytes` from `from`, launched only (for timing beside the
  // codecs; CudaCodecs::milliseconds waits for it).
  void copy_async(const DeviceBuffer& from, std::size_t bytes);

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// The codec kernels, with the small device state they need (error slots). Pointers are
// device pointers; `out` of encode holds Codec::encoded_bytes(shape) bytes.
class CudaCodecs {
 public:
  CudaCodecs();
  ~CudaCodecs();
  CudaCodecs(const CudaCodecs&) = delete;
  CudaCodecs& operator=(const CudaCodecs&) = delete;

  // Synchronous: return when the device is done. Throw InvalidArgument for the inputs the
  // CPU codec rejects (the first non-finite element, by the same flat index; a group
  // beyond fp16; a probability outside [0,1]; an encoded header of another codec or
  // shape), BackendError when a CUDA call fails.
  void encode(std::string_view codec, const float* in, const Shape& shape, void* out);
  void decode(std::string_view codec, const void* in, const Shape& shape, float* out);

  // The same kernels, only launched (no wait, no error check, no header check): for
  // timing. milliseconds() runs `launches` `reps` times between device events and returns
  // the mean time of one.
  void encode_async(std::string_view codec, const float* in, const Shape& shape, void* out);
  void decode_async(std::string_view codec, const void* in, const Shape& shape, float* out);
  double milliseconds(const std::function<void()>& launches, int reps);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adacc::compress::cuda
