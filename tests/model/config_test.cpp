// Model specs: named sizes and L=..,C=..,H=..,V=..,T=.., with sizes checked in 64 bits:
// a vocabulary whose padding overflows an int, values beyond an int, and parameter counts
// beyond 64 bits are refused with a message naming the key, in one short line.
#include "adacc/model/config.h"

#include <gtest/gtest.h>

#include <climits>
#include <string>

#include "adacc/core/error.h"
#include "support/expect_error.h"

namespace adacc::model {
namespace {

// The message parse_config throws for `spec`: one line of at most 300 characters.
std::string error_of(const std::string& spec) {
  return test::error_of<InvalidArgument>([&] { parse_config(spec); }, 300);
}

TEST(ModelConfig, ParsesNamedAndCustomSpecs) {
  const ModelConfig g = parse_config("gpt2");
  EXPECT_EQ(g.num_parameters(), 124475904);
  const ModelConfig c = parse_config("L=2,C=16,H=2,V=300,T=32");
  EXPECT_EQ(c.padded_vocab, 384);
  EXPECT_EQ(c.num_parameters(), 384 * 16 + 32 * 16 + 2 * (12 * 16 * 16 + 13 * 16) + 2 * 16);
}

TEST(ModelConfig, PaddedVocabularyThatWouldOverflowIsRefused) {
  // Before: V=2147483647 gave Vp=-2147483648.
  const std::string msg = error_of("L=1,C=16,H=2,V=2147483647,T=32");
  EXPECT_NE(msg.find("V (vocabulary) = 2147483647"), std::string::npos) << msg;
  EXPECT_NE(msg.find("at most 2147483520"), std::string::npos) << msg;
  const ModelConfig c = parse_config("L=1,C=16,H=2,V=2147483520,T=32");
  EXPECT_EQ(c.padded_vocab, 2147483520);
  EXPECT_EQ(c.num_parameters(), std::int64_t{2147483520} * 16 + 32 * 16 + 12 * 256 + 13 * 16 + 32);
  EXPECT_THROW(padded_vocab(INT_MAX), InvalidArgument);
}

TEST(ModelConfig, ValuesBeyondAnIntAreRefusedNamingTheKey) {
  const std::string msg = error_of("L=1,C=16,H=2,V=99999999999,T=32");
  EXPECT_NE(msg.find("V=99999999999"), std::string::npos) << msg;
  EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;
  EXPECT_NE(error_of("L=-99999999999999999999999").find("L=-9999"), std::string::npos);
}

TEST(ModelConfig, ParameterCountsBeyond64BitsAreRefused) {
  // 12*C*C alone overflows std::int64_t.
  const std::string msg = error_of("L=2147483647,C=2147483647,H=1,V=8,T=8");
  EXPECT_NE(msg.find("more parameters than 64 bits"), std::string::npos) << msg;
  // Fits in 64 bits as a count, but not as bytes of parameters, gradients and moments.
  const std::string bytes = error_of("L=1,C=268435456,H=1,V=8,T=8");
  EXPECT_NE(bytes.find("lower L, C, V or T"), std::string::npos) << bytes;
  ModelConfig c = parse_config("L=1,C=16,H=2,V=256,T=32");
  c.n_embd = INT_MAX;
  c.n_head = 1;
  c.n_layer = INT_MAX;
  EXPECT_THROW(c.num_parameters(), InvalidArgument);
  EXPECT_THROW(c.validate(), InvalidArgument);
}

TEST(ModelConfig, LongSpecsAreQuotedShort) {
  const std::string spec = "L=1,C=16,H=2,V=256,T=32,X=" + std::string(100000, '7');
  const std::string msg = error_of(spec);
  EXPECT_NE(msg.find("unknown key 'X'"), std::string::npos) << msg;
  EXPECT_NE(error_of(std::string(5000, 'q')).find("unknown model"), std::string::npos);
  EXPECT_NE(error_of("L=1,C=x\ny").find("cannot read 'C=x\\ny'"), std::string::npos);
}

}  // namespace
}  // namespace adacc::model
