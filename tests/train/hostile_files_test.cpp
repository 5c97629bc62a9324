// Hostile input files: safetensors headers and checkpoint.json nested 100,000 deep (a stack
// overflow before) are refused in one short line; objects of 50,000-100,000 keys read in
// linear time (11 s before); oversized files are refused unread naming the limit; a loader
// position from a file that would wrap around 2^64 is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "adacc/core/allocator.h"
#include "adacc/core/error.h"
#include "adacc/model/param_set.h"
#include "adacc/train/checkpoint.h"
#include "adacc/train/data.h"
#include "adacc/train/safetensors.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;

class HostileFiles : public ::testing::Test {
 protected:
  fs::path write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
    return dir_ / name;
  }
  // A safetensors file with this header text and `data` bytes of data.
  fs::path safetensors(const std::string& name, const std::string& header, std::size_t data = 0) {
    std::string bytes(8, '\0');
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i)
      bytes[static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
    return write(name, bytes + header + std::string(data, '\0'));
  }

  test::TempDir tmp_{"hostile_files_test"};

  fs::path dir_ = tmp_.path();
};

using test::error_of;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

const std::string kDeep = std::string(100000, '[') + std::string(100000, ']');

std::string checkpoint_json(const std::string& extra = "") {
  return R"({"step": 3, "model": "model-3.safetensors", "optim": "optim-3.safetensors",
             "config": "L=1,C=4,H=1,V=8,T=4", "rng": ["1", "2", "3", "4"],
             "loader": {"position": 0, "epoch": 0}, "options": {"b": 1, "a": [2]})" +
         extra + "}";
}

TEST_F(HostileFiles, DeeplyNestedSafetensorsHeaderIsOneShortLine) {
  for (const std::string& header :
       {kDeep, R"({"t": )" + kDeep + "}", R"({"__metadata__": {"k": )" + kDeep + "}}"}) {
    const fs::path path = safetensors("deep.safetensors", header);
    const std::string msg = error_of<FormatError>([&] { SafetensorsReader r(path); });
    EXPECT_NE(msg.find("nested deeper than 64"), std::string::npos) << msg;
    EXPECT_NE(msg.find("deep.safetensors"), std::string::npos) << msg;
    // The same file as a model to --init.
    EXPECT_NE(error_of<FormatError>([&] { read_model_config(path); }).find("nested deeper"),
              std::string::npos);
  }
}

TEST_F(HostileFiles, SafetensorsValuesAndNamesAreQuotedShort) {
  const std::string name(100000, 't');
  const fs::path a =
      safetensors("a.safetensors",
                  R"({")" + name + R"(": {"dtype": "F32", "shape": [)" + std::string(30, '[') +
                      "1" + std::string(30, ']') + R"(], "data_offsets": [0, 4]}})",
                  4);
  const std::string msg = error_of<FormatError>([&] { SafetensorsReader r(a); });
  EXPECT_NE(msg.find("(100000 bytes)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a non-negative integer: an array of 1 element"), std::string::npos)
      << msg;
  std::string dims = "[";
  for (int i = 0; i < 1000; ++i) dims += i ? ",1" : "1";
  const fs::path b = safetensors(
      "b.safetensors",
      R"({"t": {"dtype": "F32", "shape": )" + dims + R"(], "data_offsets": [0, 4]}})", 4);
  EXPECT_NE(error_of<FormatError>([&] { SafetensorsReader r(b); }).find("1000 dimensions"),
            std::string::npos);
}

TEST_F(HostileFiles, SafetensorsHeaderOfFiftyThousandTensorsOpensAndFindsInLinearTime) {
  // A find() per tensor was a linear search each (1.25e9 comparisons here).
  constexpr int kTensors = 50000;
  std::string header = "{";
  for (int i = 0; i < kTensors; ++i) {
    header += (i ? ",\"t" : "\"t") + std::to_string(i) +
              R"(":{"dtype":"F32","shape":[1],"data_offsets":[)" + std::to_string(4 * i) + "," +
              std::to_string(4 * i + 4) + "]}";
  }
  header += "}";
  const fs::path path = safetensors("many.safetensors", header, 4 * kTensors);
  const auto start = std::chrono::steady_clock::now();
  const SafetensorsReader r(path);
  std::size_t found = 0;
  for (int i = 0; i < kTensors; ++i) {
    const SafetensorsTensor* t = r.find("t" + std::to_string(i));
    found += t != nullptr && t->begin == 4u * static_cast<unsigned>(i);
  }
  EXPECT_LT(seconds_since(start), 3.0);
  EXPECT_EQ(r.tensors().size(), 50000u);
  EXPECT_EQ(found, 50000u);
  EXPECT_EQ(r.find("t50000"), nullptr);
}

TEST_F(HostileFiles, LayerNumbersAtTheEndOfIntAreCountedIn64Bits) {
  // Before: h.2147483647 gave L = INT_MAX + 1, a signed overflow (UBSan), read as L=0.
  const fs::path path =
      safetensors("layers.safetensors",
                  R"({"wte.weight": {"dtype": "F32", "shape": [1, 1], "data_offsets": [0, 4]},
          "wpe.weight": {"dtype": "F32", "shape": [1, 1], "data_offsets": [4, 8]},
          "h.2147483647.ln_1.weight": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
                  12);
  EXPECT_NE(error_of<FormatError>([&] { read_model_config(path); }).find("L=2147483648"),
            std::string::npos);
}

TEST_F(HostileFiles, DeeplyNestedCheckpointJsonIsOneShortLine) {
  write("checkpoint.json", checkpoint_json(R"(, "extra": )" + kDeep));
  const std::string msg = error_of<FormatError>([&] { read_checkpoint_config(dir_); });
  EXPECT_NE(msg.find("checkpoint.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nested deeper than 64"), std::string::npos) << msg;
  // Within the limit, a wrong field is described, not printed.
  write("checkpoint.json",
        checkpoint_json().replace(9, 1, std::string(50, '[') + "3" + std::string(50, ']')));
  EXPECT_NE(error_of<FormatError>([&] {
              read_checkpoint_config(dir_);
            }).find("'step' must be a non-negative integer, got an array of 1 element"),
            std::string::npos);
}

TEST_F(HostileFiles, CheckpointJsonWithFiftyThousandKeysIsReadInLinearTime) {
  std::string extra;
  for (int i = 0; i < 50000; ++i) extra += ", \"x" + std::to_string(i) + "\": " + std::to_string(i);
  write("checkpoint.json", checkpoint_json(extra));
  const auto start = std::chrono::steady_clock::now();
  const model::ModelConfig c = read_checkpoint_config(dir_);
  EXPECT_LT(seconds_since(start), 3.0);
  EXPECT_EQ(c.n_embd, 4);
  // Given twice, a key is an error rather than a silent choice.
  write("checkpoint.json", checkpoint_json(R"(, "step": 4)"));
  EXPECT_NE(error_of<FormatError>([&] { read_checkpoint_config(dir_); }).find("\"step\" twice"),
            std::string::npos);
}

TEST_F(HostileFiles, CheckpointNamesAndSpecsAreQuotedShort) {
  // Found by fuzzing: a file name with a newline was echoed whole, on two lines.
  write("checkpoint.json", checkpoint_json().replace(checkpoint_json().find("model-3"), 7,
                                                     "model-3\\n" + std::string(1000, 'x')));
  const model::ModelConfig tiny = model::parse_config("L=1,C=4,H=1,V=8,T=4");
  Allocator alloc;
  model::ParamSet p(tiny, alloc, MemCategory::params, "p"),
      m(tiny, alloc, MemCategory::optimizer, "m"), v(tiny, alloc, MemCategory::optimizer, "v");
  EXPECT_NE(error_of<FormatError>([&] {
              load_checkpoint(dir_, tiny, p, m, v);
            }).find("names 'model-3\\nxxx"),
            std::string::npos);
  // A valid but long spec: the config is named by its canonical spec, and so is a mismatch.
  std::string spec;
  for (int i = 0; i < 20000; ++i) spec += "L=1,";
  spec += "L=1";
  write("checkpoint.json", checkpoint_json().replace(checkpoint_json().find("L=1,C=4"), 3, spec));
  EXPECT_EQ(read_checkpoint_config(dir_).name, "L=1,C=4,H=1,V=8,T=4");
  const model::ModelConfig wider = model::parse_config("L=1,C=8,H=1,V=8,T=4");
  model::ParamSet wp(wider, alloc, MemCategory::params, "p"),
      wm(wider, alloc, MemCategory::optimizer, "m"), wv(wider, alloc, MemCategory::optimizer, "v");
  EXPECT_NE(error_of<FormatError>([&] {
              load_checkpoint(dir_, wider, wp, wm, wv);
            }).find("is of model L=1,C=4,H=1,V=8,T=4 but the model is L=1,C=8"),
            std::string::npos);
}

TEST_F(HostileFiles, OversizedCheckpointJsonIsRefusedUnread) {
  const fs::path path = write("checkpoint.json", checkpoint_json());
  fs::resize_file(path, (std::uintmax_t{16} << 20) + 1);  // sparse
  const std::string msg = error_of<FormatError>([&] { read_checkpoint_config(dir_); });
  EXPECT_NE(msg.find("16777217 bytes; checkpoint.json is limited to 16 MiB"), std::string::npos)
      << msg;
}

TEST_F(HostileFiles, CheckpointFileNamesWithNulOrHugeStepAreRefused) {
  write("checkpoint.json",
        checkpoint_json().replace(checkpoint_json().find("model-3"), 7, "model-3\\u0000x"));
  EXPECT_NE(error_of<FormatError>([&] { read_checkpoint_config(dir_); }).find("'model' must name"),
            std::string::npos);
  write("checkpoint.json", checkpoint_json().replace(9, 1, "18446744073709551615"));
  EXPECT_NE(error_of<FormatError>([&] { read_checkpoint_config(dir_); }).find("beyond 2^63"),
            std::string::npos);
}

TEST_F(HostileFiles, TextOver16GiBIsRefusedUnread) {
  const fs::path path = write("huge.txt", "text");
  fs::resize_file(path, (std::uintmax_t{16} << 30) + 1);  // sparse: nothing is written
  const std::string msg = error_of<InvalidArgument>([&] { load_tokens(path); });
  EXPECT_NE(msg.find("17179869185 bytes; text files are limited to 16 GiB"), std::string::npos)
      << msg;
}

TEST(BatchLoaderState, PositionsThatWouldWrapAroundAreRefused) {
  std::vector<std::int32_t> tokens(100, 1);
  // Before: position + B*T + 1 wrapped to a small number, and next() read far outside.
  for (const Shuffle shuffle : {Shuffle::off, Shuffle::on}) {
    BatchLoader loader(tokens, 2, 4, shuffle, 1);
    for (const std::uint64_t position :
         {~std::uint64_t{0}, ~std::uint64_t{0} - 8, std::uint64_t{1} << 63}) {
      EXPECT_THROW(loader.set_state({position, 0}), InvalidArgument) << position;
    }
    const std::uint64_t last = shuffle == Shuffle::off ? 100 - 9 : 99 / 4 - 2;
    loader.set_state({last, 3});
    std::int32_t in[8], out[8];
    loader.next(in, out);
    EXPECT_THROW(loader.set_state({last + 1, 0}), InvalidArgument);
  }
}

}  // namespace
}  // namespace adacc::train
