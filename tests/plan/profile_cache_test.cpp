// Profile files: the JSON round trip is exact (every double, infinities included), the
// file is written atomically, a profile is refused for any other key with every
// mismatching field named, and a corrupt or truncated file is a FormatError.
#include "adacc/plan/profile_cache.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "adacc/core/error.h"
#include "support/temp_dir.h"

namespace adacc::plan {
namespace {

namespace fs = std::filesystem;

runtime::StepProfile sample_profile() {
  runtime::StepProfile p;
  p.config = model::parse_config("L=1,C=32,H=2,V=64,T=16");
  p.config.attention = ops::AttentionKind::naive;
  p.batch = 2;
  p.seq = 16;
  p.threads = 3;
  p.warmup = 1;
  p.steps = 5;
  p.codec_repeats = 3;
  p.error_batch = 1;
  p.seed = 18446744073709551557ull;  // beyond int64
  p.real_data = true;
  p.budget = 123456789;
  p.peak_bytes = 98765;
  p.seconds = 1.0 / 3.0;
  p.ops = {{"embed", "embedding", 1e-300, 0.1 + 0.2},
           {"h0.fc", "linear", 2.5e-5, 7.000000000000001e-5}};
  p.tensors = {
      {"h0.fc.out",
       model::TensorRole::gelu_in,
       4096,
       {{"bf16", 2048, 1.0 / 7.0, 2.0 / 7.0, 3.1e-3, 1.7e-4, -1},
        {"gelu-derivative-int8", 1088, 5e-7, 6e-7, std::numeric_limits<double>::infinity(), 0,
         0.012345678901234567}}},
      {"h0.attn.probs", model::TensorRole::attn_probs, 2048, {}},
  };
  return p;
}

ProfileKey sample_key() {
  return profile_key(sample_profile());
}

void expect_same(const runtime::StepProfile& a, const runtime::StepProfile& b) {
  EXPECT_EQ(a.config.spec(), b.config.spec());
  EXPECT_EQ(a.config.attention, b.config.attention);
  EXPECT_EQ(a.config.padded_vocab, b.config.padded_vocab);
  EXPECT_EQ(a.batch, b.batch);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.threads, b.threads);
  EXPECT_EQ(a.warmup, b.warmup);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.codec_repeats, b.codec_repeats);
  EXPECT_EQ(a.error_batch, b.error_batch);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.real_data, b.real_data);
  EXPECT_EQ(a.budget, b.budget);
  EXPECT_EQ(a.peak_bytes, b.peak_bytes);
  EXPECT_EQ(a.seconds, b.seconds);
  ASSERT_EQ(a.ops.size(), b.ops.size());
  for (std::size_t i = 0; i < a.ops.size(); ++i) {
    EXPECT_EQ(a.ops[i].name, b.ops[i].name);
    EXPECT_EQ(a.ops[i].kind, b.ops[i].kind);
    EXPECT_EQ(a.ops[i].forward_seconds, b.ops[i].forward_seconds);
    EXPECT_EQ(a.ops[i].backward_seconds, b.ops[i].backward_seconds);
  }
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].role, b.tensors[i].role);
    EXPECT_EQ(a.tensors[i].bytes, b.tensors[i].bytes);
    ASSERT_EQ(a.tensors[i].codecs.size(), b.tensors[i].codecs.size());
    for (std::size_t c = 0; c < a.tensors[i].codecs.size(); ++c) {
      const runtime::ProfiledCodec &x = a.tensors[i].codecs[c], &y = b.tensors[i].codecs[c];
      EXPECT_EQ(x.codec, y.codec);
      EXPECT_EQ(x.encoded_bytes, y.encoded_bytes);
      EXPECT_EQ(x.encode_seconds, y.encode_seconds);
      EXPECT_EQ(x.decode_seconds, y.decode_seconds);
      EXPECT_EQ(x.tensor_error, y.tensor_error);
      EXPECT_EQ(x.grad_error, y.grad_error);
      EXPECT_EQ(x.weight_grad_error, y.weight_grad_error);
    }
  }
}

TEST(ProfileCache, JsonRoundTripIsExact) {
  const runtime::StepProfile p = sample_profile();
  const ProfileKey key = sample_key();
  const std::string text = profile_to_json(key, p);
  const StoredProfile back = profile_from_json(text, "test");
  EXPECT_EQ(back.key, key);
  expect_same(back.profile, p);
  EXPECT_EQ(profile_to_json(back.key, back.profile), text);
  EXPECT_TRUE(std::isinf(back.profile.tensors[0].codecs[1].tensor_error));

  runtime::StepProfile unlimited = p;
  unlimited.budget = Allocator::kUnlimited;
  unlimited.real_data = false;
  expect_same(profile_from_json(profile_to_json(key, unlimited), "test").profile, unlimited);
}

TEST(ProfileCache, SaveIsAtomicAndLoadChecksTheKey) {
  test::TempDir dir("profile_cache_test");
  const fs::path path = dir.path() / "sub" / "p.json";
  save_profile(path, sample_key(), sample_profile());
  for (const auto& e : fs::directory_iterator(path.parent_path())) {
    EXPECT_EQ(e.path().filename(), "p.json");  // no temporary left behind
  }
  expect_same(load_profile(path, sample_key()), sample_profile());
  // Saving again replaces the file.
  runtime::StepProfile q = sample_profile();
  q.steps = 9;
  save_profile(path, sample_key(), q);
  EXPECT_EQ(read_profile(path).profile.steps, 9);
}

TEST(ProfileCache, EveryMismatchingKeyFieldIsNamed) {
  test::TempDir dir("profile_cache_test");
  const fs::path path = dir.path() / "p.json";
  save_profile(path, sample_key(), sample_profile());
  struct Change {
    const char* field;
    void (*apply)(ProfileKey&);
  };
  const Change changes[] = {
      {"n_embd=", [](ProfileKey& k) { k.n_embd = 64; }},
      {"n_head=", [](ProfileKey& k) { k.n_head = 4; }},
      {"vocab=", [](ProfileKey& k) { k.vocab = 65; }},
      {"max_seq=", [](ProfileKey& k) { k.max_seq = 32; }},
      {"batch=", [](ProfileKey& k) { k.batch = 4; }},
      {"seq=", [](ProfileKey& k) { k.seq = 8; }},
      {"threads=", [](ProfileKey& k) { k.threads = 4; }},
      {"attention=", [](ProfileKey& k) { k.attention = "flash"; }},
      {"cpu_model=", [](ProfileKey& k) { k.cpu_model = "Another CPU"; }},
      {"adacc_version=", [](ProfileKey& k) { k.adacc_version = "9.9.9"; }},
  };
  for (const Change& c : changes) {
    ProfileKey wanted = sample_key();
    c.apply(wanted);
    ASSERT_NE(wanted, sample_key()) << c.field;
    ASSERT_EQ(key_mismatches(sample_key(), wanted).size(), 1u) << c.field;
    try {
      load_profile(path, wanted);
      FAIL() << c.field << " mismatch accepted";
    } catch (const InvalidArgument& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(std::string("was measured with ") + c.field), std::string::npos) << m;
      EXPECT_NE(m.find(std::string("this run uses ") + c.field), std::string::npos) << m;
      EXPECT_NE(m.find("re-run adacc profile"), std::string::npos) << m;
    }
  }
  ProfileKey two = sample_key();
  two.threads = 4;
  two.batch = 8;
  try {
    load_profile(path, two);
    FAIL();
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("batch=2, this run uses batch=8"), std::string::npos) << m;
    EXPECT_NE(m.find("threads=3, this run uses threads=4"), std::string::npos) << m;
  }
}

TEST(ProfileCache, CorruptFilesAreFormatErrors) {
  const std::string text = profile_to_json(sample_key(), sample_profile());
  // Truncated anywhere: never accepted.
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, text.size() / 3, text.size() / 2, text.size() - 3}) {
    EXPECT_THROW(profile_from_json(text.substr(0, n), "p.json"), FormatError) << n;
  }
  auto expect_bad = [&](const std::string& from, const std::string& to, const std::string& named) {
    std::string bad = text;
    const std::size_t at = bad.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    bad.replace(at, from.size(), to);
    try {
      profile_from_json(bad, "p.json");
      FAIL() << to;
    } catch (const FormatError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("p.json"), std::string::npos) << m;
      EXPECT_NE(m.find(named), std::string::npos) << m;
    }
  };
  expect_bad("\"adacc-profile\"", "\"other\"", "format");
  expect_bad("\"threads\": 3", "\"threads\": \"3\"", "key.threads");
  expect_bad("\"threads\": 3", "\"threads\": -3", "key.threads");
  expect_bad("\"attention\": \"naive\"", "\"attention\": \"fast\"", "key.attention");
  expect_bad("\"n_head\": 2", "\"n_head\": 5", "key");  // C % H != 0
  expect_bad("\"role\": \"gelu_in\"", "\"role\": \"elsewhere\"", "tensors[0].role");
  expect_bad("\"encoded_bytes\": 2048", "\"encoded_bytes\": 2048.5", "tensors[0].codecs[0]");
  expect_bad("\"forward_seconds\": 1e-300", "\"forward_seconds\": \"fast\"", "ops[0]");
  expect_bad("\"name\": \"h0.fc\"", "\"name\": \"embed\"", "repeats op");
  expect_bad("\"tokens\": \"data\"", "\"tokens\": \"mixed\"", "measured.tokens");
}

TEST(ProfileCache, AMissingFileIsNamed) {
  try {
    read_profile("/nonexistent/dir/p.json");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/p.json"), std::string::npos);
  }
}

TEST(ProfileCache, CpuModelIsTheFirstModelName) {
  EXPECT_EQ(cpu_model_from_cpuinfo("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 85\n"
                                   "model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz  \n"
                                   "processor\t: 1\nmodel name\t: other\n"),
            "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz");
  EXPECT_EQ(cpu_model_from_cpuinfo("processor : 0\nBogoMIPS : 50.00\n"), "unknown");
  EXPECT_EQ(cpu_model_from_cpuinfo(""), "unknown");
  EXPECT_FALSE(this_cpu_model().empty());
  EXPECT_FALSE(adacc_version().empty());
  EXPECT_NE(adacc_version(), "unknown");
}

TEST(ProfileCache, DefaultPathIsUnderTheCacheDirectoryOnePerKey) {
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old != nullptr ? old : "";
  setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
  const fs::path a = default_profile_path(sample_key());
  ProfileKey other = sample_key();
  other.threads = 4;
  const fs::path b = default_profile_path(other);
  if (old != nullptr) {
    setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  } else {
    unsetenv("XDG_CACHE_HOME");
  }
  EXPECT_EQ(a.parent_path(), fs::path("/tmp/xdg-test/adacc"));
  EXPECT_EQ(a.filename().string().rfind("profile-", 0), 0u);
  EXPECT_EQ(a.extension(), ".json");
  EXPECT_NE(a, b);
  setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
  EXPECT_EQ(default_profile_path(sample_key()), a);
  if (old != nullptr) {
    setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  } else {
    unsetenv("XDG_CACHE_HOME");
  }
}

}  // namespace
}  // namespace adacc::plan
