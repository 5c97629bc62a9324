// The CUDA codecs against the CPU codecs of the same names: on the same data (normal with
// planted outliers, causal probabilities, partial groups, single elements) the GPU writes
// the CPU's bytes (the GELU-derivative codecs: the same byte but for rare rounding-boundary
// cases, at most one level apart), the GPU decodes the CPU's bytes to the CPU's values (up
// to one rounding of a fused multiply-add), non-finite inputs are rejected naming the
// same element, and a wrong header is refused. Without a GPU (CI), only the "no device"
// behaviour is checked and the rest is skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "adacc/compress/codec.h"
#include "adacc/compress/cuda_codecs.h"
#include "adacc/core/error.h"
#include "reference/test_util.h"

namespace adacc::compress::cuda {
namespace {

TEST(CudaCodecs, WithoutADeviceSayHowToGetOne) {
  if (device_available()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW(CudaCodecs(), BackendError);
  EXPECT_THROW(DeviceBuffer(16), BackendError);
}

std::vector<Shape> shapes_for(const std::string& codec) {
  if (codec == "softmax-u8") return {{2, 3, 37, 37}, {1, 2, 128, 128}, {1, 1, 1, 1}};
  return {{64, 768}, {3, 200}, {5, 129}, {1, 1}, {7}};
}

test::Vec data_for(const std::string& codec, const Shape& s, Rng& rng) {
  const auto n = static_cast<std::size_t>(shape_numel(s));
  if (codec == "softmax-u8") {
    const std::int64_t t = s.back();
    test::Vec p(n, 0.0);
    for (std::int64_t r = 0; r < static_cast<std::int64_t>(n) / t; ++r) {
      const std::int64_t i = r % t;
      double sum = 0;
      for (std::int64_t j = 0; j <= i; ++j) sum += (p[r * t + j] = std::exp(3 * rng.normal()));
      for (std::int64_t j = 0; j <= i; ++j) p[r * t + j] /= sum;
    }
    return test::round_to_float(p);
  }
  test::Vec v = test::normal_vec(rng, n, 2.0);
  const std::int64_t c = s.empty() ? 1 : s.back();
  for (std::size_t i = 0; i < n; ++i) {
    if (static_cast<std::int64_t>(i) % c == 5 || i % 97 == 3)
      v[i] *= 40;  // outlier channel, spikes
  }
  return test::round_to_float(v);
}

class CudaCodecsOnDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
    gpu_ = std::make_unique<CudaCodecs>();
  }
  Allocator alloc_;
  Context ctx_{alloc_, 2, 1};
  std::unique_ptr<CudaCodecs> gpu_;
};

TEST_F(CudaCodecsOnDevice, EncodeLikeTheCpuAndDecodeTheCpuBytes) {
  Rng rng(3);
  for (const std::string& name : codec_names()) {
    const Codec& cpu = codec_by_name(name);
    for (const Shape& s : shapes_for(name)) {
      SCOPED_TRACE(name + " " + shape_str(s));
      const test::Vec v = data_for(name, s, rng);
      Tensor x = test::to_tensor(alloc_, v, s);
      const Tensor want = cpu.encode(ctx_, x);
      const std::size_t bytes = want.nbytes();
      DeviceBuffer d_x(x.nbytes()), d_enc(bytes), d_y(x.nbytes());
      d_x.upload(x.raw(), x.nbytes());
      gpu_->encode(name, static_cast<const float*>(d_x.data()), s, d_enc.data());
      std::vector<std::uint8_t> got(bytes);
      d_enc.download(got.data(), bytes);
      const auto* w = static_cast<const std::uint8_t*>(want.raw());
      std::size_t differ = 0;
      for (std::size_t i = 0; i < bytes; ++i) {
        if (got[i] == w[i]) continue;
        ++differ;
        if (name.rfind("gelu-deriv", 0) == 0 && i >= 16) {
          // Packed levels may sit one apart where gelu' lands on a rounding boundary.
          const int bits = name == "gelu-deriv-u8" ? 8 : 4;
          for (int e = 0; e < 8; e += bits) {
            const int a = (got[i] >> e) & ((1 << bits) - 1), b = (w[i] >> e) & ((1 << bits) - 1);
            ASSERT_LE(std::abs(a - b), 1) << "byte " << i;
          }
        } else {
          ADD_FAILURE() << "byte " << i << " of " << bytes << ": GPU " << int(got[i]) << ", CPU "
                        << int(w[i]);
          break;
        }
      }
      EXPECT_LE(differ, bytes / 1000) << "bytes that differ";

      // The GPU decodes the CPU's bytes to the CPU's values.
      d_enc.upload(want.raw(), bytes);
      gpu_->decode(name, d_enc.data(), s, static_cast<float*>(d_y.data()));
      std::vector<float> y(v.size());
      d_y.download(y.data(), y.size() * 4);
      Tensor ref = Tensor::empty(alloc_, s, DType::f32, MemCategory::workspace, "ref");
      cpu.decode(ctx_, want, ref);
      for (std::size_t i = 0; i < y.size(); ++i) {
        const float r = ref.data<float>()[i];
        ASSERT_NEAR(y[i], r, 2e-7 * std::abs(r) + 1e-30) << "element " << i;
      }
    }
  }
}

TEST_F(CudaCodecsOnDevice, RejectTheInputsTheCpuRejects) {
  for (const std::string& name : codec_names()) {
    if (name == "softmax-u8" || name == "bf16") continue;  // bf16 keeps NaN, as on the CPU
    SCOPED_TRACE(name);
    test::Vec v(64 * 100, 0.25);
    v[1234] = std::numeric_limits<double>::quiet_NaN();
    v[4000] = std::numeric_limits<double>::infinity();
    DeviceBuffer d_x(v.size() * 4), d_enc(codec_by_name(name).encoded_bytes({64, 100}));
    std::vector<float> f(v.begin(), v.end());
    d_x.upload(f.data(), f.size() * 4);
    test::expect_invalid(
        [&] {
          gpu_->encode(name, static_cast<const float*>(d_x.data()), {64, 100}, d_enc.data());
        },
        name, "1234");
  }
  // A header of another codec or shape.
  test::Vec v(64 * 100, 0.5);
  std::vector<float> f(v.begin(), v.end());
  DeviceBuffer d_x(f.size() * 4), d_enc(codec_by_name("int4-g64").encoded_bytes({64, 100})),
      d_y(f.size() * 4);
  d_x.upload(f.data(), f.size() * 4);
  gpu_->encode("int4-g64", static_cast<const float*>(d_x.data()), {64, 100}, d_enc.data());
  EXPECT_THROW(gpu_->decode("int4-g128", d_enc.data(), {64, 100}, static_cast<float*>(d_y.data())),
               InvalidArgument);
  EXPECT_THROW(gpu_->decode("int4-g64", d_enc.data(), {100, 64}, static_cast<float*>(d_y.data())),
               InvalidArgument);
}

}  // namespace
}  // namespace adacc::compress::cuda
