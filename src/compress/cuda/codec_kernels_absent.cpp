// The CUDA codec entry points of a build without CUDA (see cuda_codecs.h): no device, and
// everything else says how to get one.
#include "adacc/compress/cuda_codecs.h"
#include "adacc/core/error.h"

namespace adacc::compress::cuda {

namespace {
[[noreturn]] void no_cuda() {
  throw BackendError(
      "[codec] this build has no CUDA kernels; rebuild with nvcc on PATH (cmake -DADACC_CUDA=ON)");
}
}  // namespace

bool device_available() {
  return false;
}

DeviceBuffer::DeviceBuffer(std::size_t) {
  no_cuda();
}
DeviceBuffer::~DeviceBuffer() = default;
void DeviceBuffer::upload(const void*, std::size_t) {
  no_cuda();
}
void DeviceBuffer::download(void*, std::size_t) const {
  no_cuda();
}
void DeviceBuffer::copy_async(const DeviceBuffer&, std::size_t) {
  no_cuda();
}

struct CudaCodecs::Impl {};
CudaCodecs::CudaCodecs() {
  no_cuda();
}
CudaCodecs::~CudaCodecs() = default;
void CudaCodecs::encode(std::string_view, const float*, const Shape&, void*) {
  no_cuda();
}
void CudaCodecs::decode(std::string_view, const void*, const Shape&, float*) {
  no_cuda();
}
void CudaCodecs::encode_async(std::string_view, const float*, const Shape&, void*) {
  no_cuda();
}
void CudaCodecs::decode_async(std::string_view, const void*, const Shape&, float*) {
  no_cuda();
}
double CudaCodecs::milliseconds(const std::function<void()>&, int) {
  no_cuda();
}

}  // namespace adacc::compress::cuda
