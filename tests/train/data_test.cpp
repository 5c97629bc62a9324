// Training data: text and llm.c shard loading (good and corrupt files written to a
// temporary folder), sentencepiece encoding with a model trained here, the
// train/validation split, and the batch loader — llm.c's sequential rule checked
// against hand-computed batches, shuffled epochs checked for coverage and determinism,
// and state save/restore checked against an uninterrupted loader in both modes.
#include "adacc/train/data.h"

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/core/rng.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void put_le32(std::string& s, std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((u >> (8 * i)) & 0xFF));
}

// An llm.c shard: a 256-int32 header (magic, version, token count, zeros) and the tokens
// as uint16, all little-endian, written byte by byte from the format's definition.
std::string shard_bytes(const std::vector<std::uint32_t>& tokens, std::int32_t version = 1,
                        std::optional<std::int32_t> header_count = std::nullopt) {
  std::string s;
  put_le32(s, 20240520);
  put_le32(s, version);
  put_le32(s, header_count.value_or(static_cast<std::int32_t>(tokens.size())));
  for (int i = 3; i < 256; ++i) put_le32(s, 0);
  for (std::uint32_t t : tokens) {
    s.push_back(static_cast<char>(t & 0xFF));
    s.push_back(static_cast<char>((t >> 8) & 0xFF));
  }
  return s;
}

// Runs f, expects it to throw E whose message is one line, starts with "[data] " and
// contains every string of `parts`.
template <typename E, typename F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  const std::string msg = test::error_of<E>(std::forward<F>(f));
  EXPECT_EQ(msg.rfind("[data] ", 0), 0u) << msg;
  for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
}

std::vector<std::int32_t> iota_tokens(int n) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

struct Batch {
  std::vector<std::int32_t> inputs, targets;
  bool operator==(const Batch&) const = default;
};

Batch next_batch(BatchLoader& loader, int B, int T) {
  Batch b{std::vector<std::int32_t>(static_cast<std::size_t>(B * T)),
          std::vector<std::int32_t>(static_cast<std::size_t>(B * T))};
  loader.next(b.inputs.data(), b.targets.data());
  return b;
}

// ---------------------------------------------------------------- loading: text

TEST(LoadTokens, TextIsOneTokenPerByte) {
  test::TempDir dir("data_test");
  std::string text = "Hello, world!\nSecond line\t";
  text.push_back('\x01');
  text.push_back(static_cast<char>(0xFF));
  text.push_back(static_cast<char>(0x80));
  text += "\xC3\xA9";                     // e-acute in UTF-8: two tokens
  const fs::path p = dir / "corpus.bin";  // the name does not decide the format
  write_file(p, text);

  const TokenStream s = load_tokens(p);
  EXPECT_EQ(s.format, TokenFormat::bytes);
  EXPECT_EQ(s.vocab, 256);
  EXPECT_EQ(s.source, p.string());
  ASSERT_EQ(s.tokens.size(), text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    EXPECT_EQ(s.tokens[i], static_cast<int>(static_cast<unsigned char>(text[i]))) << i;
  }
  EXPECT_EQ(s.tokens[13], 10);
  EXPECT_EQ(s.tokens[text.size() - 5], 1);
  EXPECT_EQ(s.tokens[text.size() - 4], 255);
}

TEST(LoadTokens, ShortTextAndTextStartingLikeNoShard) {
  test::TempDir dir("data_test");
  write_file(dir / "a.txt", "x");
  const TokenStream one = load_tokens(dir / "a.txt");
  ASSERT_EQ(one.tokens.size(), 1u);
  EXPECT_EQ(one.tokens[0], 'x');

  // Three of the magic's four bytes: text, not a truncated shard.
  std::string almost;
  put_le32(almost, 20240520);
  almost.pop_back();
  write_file(dir / "b.txt", almost);
  const TokenStream three = load_tokens(dir / "b.txt");
  EXPECT_EQ(three.format, TokenFormat::bytes);
  EXPECT_EQ(three.tokens.size(), 3u);
}

TEST(LoadTokens, MissingEmptyAndDirectoryAreInvalidArgument) {
  test::TempDir dir("data_test");
  const fs::path missing = dir / "nope.txt";
  expect_error<InvalidArgument>([&] { load_tokens(missing); },
                                {missing.string() + "' does not exist"});
  write_file(dir / "empty.txt", "");
  expect_error<InvalidArgument>([&] { load_tokens(dir / "empty.txt"); },
                                {(dir / "empty.txt").string(), "is empty"});
  expect_error<InvalidArgument>([&] { load_tokens(dir.path()); },
                                {dir.path().string(), "directory"});
}

// ---------------------------------------------------------------- loading: shards

TEST(LoadTokens, ShardDetectedByContent) {
  test::TempDir dir("data_test");
  const std::vector<std::uint32_t> toks = {0, 1, 255, 256, 50256, 12345, 65, 0x1234};
  const fs::path p = dir / "corpus.txt";  // a shard whatever its name
  write_file(p, shard_bytes(toks));
  const TokenStream s = load_tokens(p);
  EXPECT_EQ(s.format, TokenFormat::llmc_shard);
  EXPECT_EQ(s.vocab, 50257);
  EXPECT_EQ(s.source, p.string());
  ASSERT_EQ(s.tokens.size(), toks.size());
  for (std::size_t i = 0; i < toks.size(); ++i) EXPECT_EQ(s.tokens[i], int(toks[i])) << i;
}

TEST(LoadTokens, ShardSentencepieceOptionIgnored) {
  test::TempDir dir("data_test");
  write_file(dir / "s.bin", shard_bytes({7, 8, 9}));
  LoadOptions opt;
  opt.sentencepiece_model = dir / "no_such.model";
  const TokenStream s = load_tokens(dir / "s.bin", opt);
  EXPECT_EQ(s.format, TokenFormat::llmc_shard);
  EXPECT_EQ(s.tokens, (std::vector<std::int32_t>{7, 8, 9}));
}

// More tokens than one read chunk (2^19), so the checks span chunks; a bad id in the
// second chunk is reported at its position in the whole stream.
TEST(LoadTokens, LargeShardAcrossChunks) {
  test::TempDir dir("data_test");
  const std::size_t n = 1'300'000;
  std::vector<std::uint32_t> toks(n);
  for (std::size_t i = 0; i < n; ++i) toks[i] = static_cast<std::uint32_t>((i * 7919) % 50257);
  write_file(dir / "big.bin", shard_bytes(toks));
  const TokenStream s = load_tokens(dir / "big.bin");
  ASSERT_EQ(s.tokens.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    if (s.tokens[i] != static_cast<std::int32_t>(toks[i])) {
      FAIL() << "token " << i << " is " << s.tokens[i] << ", expected " << toks[i];
    }
  }

  toks[700'001] = 60000;
  toks[900'000] = 50257;
  write_file(dir / "bad.bin", shard_bytes(toks));
  expect_error<FormatError>([&] { load_tokens(dir / "bad.bin"); },
                            {(dir / "bad.bin").string(), "token 700001", "60000", "50257"});
}

TEST(LoadTokens, ShardTokenOutOfVocab) {
  test::TempDir dir("data_test");
  write_file(dir / "v.bin", shard_bytes({1, 2, 3, 4, 5, 50257, 6}));
  expect_error<FormatError>([&] { load_tokens(dir / "v.bin"); },
                            {(dir / "v.bin").string(), "token 5 ", "is 50257"});
  write_file(dir / "w.bin", shard_bytes({65535}));
  expect_error<FormatError>([&] { load_tokens(dir / "w.bin"); }, {"token 0 ", "65535"});
}

TEST(LoadTokens, BinaryFileWithWrongMagicIsRejected) {
  test::TempDir dir("data_test");
  std::string bytes = shard_bytes({1, 2, 3});
  bytes[0] = 0x39;  // magic 20240441 instead of 20240520
  write_file(dir / "bad.bin", bytes);
  expect_error<FormatError>([&] { load_tokens(dir / "bad.bin"); },
                            {(dir / "bad.bin").string(), "magic 20240441", "20240520"});
  std::string model;
  put_le32(model, 20240326);
  put_le32(model, 3);
  write_file(dir / "model.bin", model);
  expect_error<FormatError>([&] { load_tokens(dir / "model.bin"); },
                            {(dir / "model.bin").string(), "checkpoint", "--init"});
}

TEST(LoadTokens, ShardWrongVersion) {
  test::TempDir dir("data_test");
  write_file(dir / "v2.bin", shard_bytes({1, 2, 3}, /*version=*/2));
  expect_error<FormatError>([&] { load_tokens(dir / "v2.bin"); },
                            {(dir / "v2.bin").string(), "version 2", "expected 1"});
}

TEST(LoadTokens, ShardTruncatedBody) {
  test::TempDir dir("data_test");
  // The header says 10 tokens, the body holds 7: 1024 + 20 expected, 1024 + 14 found.
  write_file(dir / "t.bin", shard_bytes({1, 2, 3, 4, 5, 6, 7}, 1, /*header_count=*/10));
  expect_error<FormatError>([&] { load_tokens(dir / "t.bin"); },
                            {(dir / "t.bin").string(), "truncated", "10 tokens", "1044", "1038"});
  // An odd trailing byte short of the last token.
  std::string odd = shard_bytes({1, 2, 3});
  odd.pop_back();
  write_file(dir / "odd.bin", odd);
  expect_error<FormatError>([&] { load_tokens(dir / "odd.bin"); }, {"1030", "1029"});
}

TEST(LoadTokens, ShardLongerThanHeaderSaysOrNoTokens) {
  test::TempDir dir("data_test");
  write_file(dir / "long.bin", shard_bytes({1, 2, 3, 4}, 1, /*header_count=*/3));
  expect_error<FormatError>([&] { load_tokens(dir / "long.bin"); },
                            {(dir / "long.bin").string(), "1030", "1032"});
  write_file(dir / "zero.bin", shard_bytes({}, 1, 0));
  expect_error<FormatError>([&] { load_tokens(dir / "zero.bin"); },
                            {(dir / "zero.bin").string(), "0 tokens"});
  write_file(dir / "neg.bin", shard_bytes({}, 1, -5));
  expect_error<FormatError>([&] { load_tokens(dir / "neg.bin"); }, {"-5 tokens"});
}

TEST(LoadTokens, ShardTruncatedHeader) {
  test::TempDir dir("data_test");
  std::string s = shard_bytes({1, 2});
  s.resize(100);
  write_file(dir / "h.bin", s);
  expect_error<FormatError>([&] { load_tokens(dir / "h.bin"); },
                            {(dir / "h.bin").string(), "truncated header", "1024", "100"});
  s.resize(4);  // the magic alone
  write_file(dir / "m.bin", s);
  expect_error<FormatError>([&] { load_tokens(dir / "m.bin"); }, {"truncated header", "found 4"});
}

// ---------------------------------------------------------------- sentencepiece

// Sentences of a small made-up language; every line uses only these words.
std::string generated_text(int lines, std::uint64_t seed) {
  static const char* words[] = {"the",    "cat",   "sat",   "on",     "mat",   "dog",
                                "ran",    "far",   "away",  "from",   "home",  "memory",
                                "budget", "train", "model", "tokens", "quick", "brown"};
  Rng rng(seed);
  std::string text;
  for (int l = 0; l < lines; ++l) {
    const int n = 4 + static_cast<int>(rng.next_u64() % 8);
    for (int w = 0; w < n; ++w) {
      if (w) text += ' ';
      text += words[rng.next_u64() % (sizeof(words) / sizeof(words[0]))];
    }
    text += '\n';
  }
  return text;
}

TEST(LoadTokens, SentencepieceRoundTrip) {
  test::TempDir dir("data_test");
  const fs::path train_txt = dir / "spm_train.txt";
  write_file(train_txt, generated_text(400, 1));
  const fs::path prefix = dir / "tiny";
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + train_txt.string() + " --model_prefix=" + prefix.string() +
      " --vocab_size=100 --model_type=bpe --character_coverage=1.0"
      " --normalization_rule_name=identity --minloglevel=2");
  ASSERT_TRUE(status.ok()) << status.ToString();
  const fs::path model = prefix.string() + ".model";

  // One line of the language (sentencepiece treats lines as sentences).
  std::string text = generated_text(1, 2);
  text.pop_back();
  write_file(dir / "corpus.txt", text);

  LoadOptions opt;
  opt.sentencepiece_model = model;
  const TokenStream s = load_tokens(dir / "corpus.txt", opt);
  EXPECT_EQ(s.format, TokenFormat::sentencepiece);
  EXPECT_EQ(s.vocab, 100);
  EXPECT_EQ(s.source, (dir / "corpus.txt").string());
  ASSERT_FALSE(s.tokens.empty());
  EXPECT_LT(s.tokens.size(), text.size());  // merges: fewer tokens than bytes
  for (std::int32_t t : s.tokens) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, s.vocab);
  }

  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(model.string()).ok());
  EXPECT_EQ(sp.GetPieceSize(), 100);
  std::string decoded;
  ASSERT_TRUE(sp.Decode(std::vector<int>(s.tokens.begin(), s.tokens.end()), &decoded).ok());
  EXPECT_EQ(decoded, text);
}

TEST(LoadTokens, SentencepieceModelMissingOrInvalid) {
  test::TempDir dir("data_test");
  write_file(dir / "corpus.txt", "some text");
  LoadOptions opt;
  opt.sentencepiece_model = dir / "missing.model";
  expect_error<InvalidArgument>([&] { load_tokens(dir / "corpus.txt", opt); },
                                {(dir / "missing.model").string(), "does not exist"});
  write_file(dir / "garbage.model", "this is not a sentencepiece model\n\x01\x02");
  opt.sentencepiece_model = dir / "garbage.model";
  expect_error<InvalidArgument>([&] { load_tokens(dir / "corpus.txt", opt); },
                                {(dir / "garbage.model").string()});
  write_file(dir / "empty.model", "");
  opt.sentencepiece_model = dir / "empty.model";
  expect_error<InvalidArgument>([&] { load_tokens(dir / "corpus.txt", opt); },
                                {(dir / "empty.model").string(), "is empty"});
}

// ---------------------------------------------------------------- split

TEST(SplitTrainVal, TailIsValidation) {
  const std::vector<std::int32_t> t = iota_tokens(100);
  const TrainValSplit s = split_train_val(t, 0.1, 5);
  ASSERT_EQ(s.train.size(), 90u);
  ASSERT_EQ(s.val.size(), 10u);
  EXPECT_EQ(s.train.front(), 0);
  EXPECT_EQ(s.train.back(), 89);
  EXPECT_EQ(s.val.front(), 90);
  EXPECT_EQ(s.val.back(), 99);

  // floor(105 * 0.25) = 26 validation tokens.
  const TrainValSplit q = split_train_val(iota_tokens(105), 0.25, 1);
  EXPECT_EQ(q.train.size(), 79u);
  EXPECT_EQ(q.val.size(), 26u);
  EXPECT_EQ(q.val.front(), 79);

  const TrainValSplit z = split_train_val(t, 0.0, 0);
  EXPECT_EQ(z.train, t);
  EXPECT_TRUE(z.val.empty());
}

TEST(SplitTrainVal, TooShortOrBadFraction) {
  const std::vector<std::int32_t> t = iota_tokens(100);
  expect_error<InvalidArgument>([&] { split_train_val(t, 0.1, 11); }, {"90", "10", "11"});
  expect_error<InvalidArgument>([&] { split_train_val(t, 0.95, 10); }, {"5 validation"});
  expect_error<InvalidArgument>([&] { split_train_val(t, 1.0, 0); }, {"val_fraction"});
  expect_error<InvalidArgument>([&] { split_train_val(t, -0.1, 0); }, {"val_fraction"});
  expect_error<InvalidArgument>(
      [&] { split_train_val(t, std::numeric_limits<double>::quiet_NaN(), 0); }, {"val_fraction"});
}

// ---------------------------------------------------------------- sequential batches

// tokens 0..99, B=2, T=4: batch i holds inputs 8i..8i+7 and targets 8i+1..8i+8 while
// 8i + 9 <= 100, i.e. i = 0..11; the 13th batch starts over at 0.
TEST(BatchLoaderOff, MatchesLlmcSequentialRule) {
  BatchLoader loader(iota_tokens(100), 2, 4, Shuffle::off, 0);
  EXPECT_EQ(loader.batches_per_epoch(), 12u);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 12; ++i) {
      EXPECT_EQ(loader.state().position, std::uint64_t(8 * i));
      EXPECT_EQ(loader.state().epoch, std::uint64_t(round));
      const Batch b = next_batch(loader, 2, 4);
      for (int j = 0; j < 8; ++j) {
        EXPECT_EQ(b.inputs[j], 8 * i + j) << "batch " << i;
        EXPECT_EQ(b.targets[j], 8 * i + j + 1) << "batch " << i;
      }
    }
    EXPECT_EQ(loader.state().position, 0u);
    EXPECT_EQ(loader.state().epoch, std::uint64_t(round + 1));
  }
}

TEST(BatchLoaderOff, WrapsWhenFewerThanBTPlusOneRemain) {
  // 17 tokens, B*T = 8: batches at 0 and 8 (8 + 9 = 17 fits), then back to 0.
  BatchLoader a(iota_tokens(17), 2, 4, Shuffle::off, 0);
  EXPECT_EQ(a.batches_per_epoch(), 2u);
  EXPECT_EQ(next_batch(a, 2, 4).inputs.front(), 0);
  const Batch second = next_batch(a, 2, 4);
  EXPECT_EQ(second.inputs, (std::vector<std::int32_t>{8, 9, 10, 11, 12, 13, 14, 15}));
  EXPECT_EQ(second.targets, (std::vector<std::int32_t>{9, 10, 11, 12, 13, 14, 15, 16}));
  EXPECT_EQ(next_batch(a, 2, 4).inputs.front(), 0);

  // 16 tokens: a batch at 8 would need token 16, so every batch starts at 0.
  BatchLoader b(iota_tokens(16), 2, 4, Shuffle::off, 0);
  EXPECT_EQ(b.batches_per_epoch(), 1u);
  for (int i = 0; i < 3; ++i) {
    const Batch x = next_batch(b, 2, 4);
    EXPECT_EQ(x.inputs.front(), 0);
    EXPECT_EQ(x.targets.back(), 8);
    EXPECT_EQ(b.state().epoch, std::uint64_t(i + 1));
  }

  // Exactly B*T+1 tokens is enough for one batch.
  BatchLoader c(iota_tokens(9), 2, 4, Shuffle::off, 0);
  EXPECT_EQ(next_batch(c, 2, 4).targets.back(), 8);
}

TEST(BatchLoader, ConstructorErrors) {
  expect_error<InvalidArgument>([] { BatchLoader(iota_tokens(8), 2, 4, Shuffle::off, 0); },
                                {"8 tokens", "9"});
  expect_error<InvalidArgument>([] { BatchLoader(iota_tokens(8), 2, 4, Shuffle::on, 0); },
                                {"8 tokens"});
  expect_error<InvalidArgument>([] { BatchLoader(iota_tokens(100), 0, 4, Shuffle::off, 0); },
                                {"B=0"});
  expect_error<InvalidArgument>([] { BatchLoader(iota_tokens(100), 2, -1, Shuffle::on, 0); },
                                {"T=-1"});
}

// ---------------------------------------------------------------- shuffled batches

// With tokens 0..n-1 each row of a batch names its window: inputs k*T..k*T+T-1,
// targets one further. Returns the windows of one batch, checking each row.
std::vector<std::int64_t> batch_windows(const Batch& b, int B, int T) {
  std::vector<std::int64_t> w;
  for (int r = 0; r < B; ++r) {
    const std::int32_t first = b.inputs[static_cast<std::size_t>(r * T)];
    EXPECT_EQ(first % T, 0);
    for (int t = 0; t < T; ++t) {
      EXPECT_EQ(b.inputs[static_cast<std::size_t>(r * T + t)], first + t);
      EXPECT_EQ(b.targets[static_cast<std::size_t>(r * T + t)], first + t + 1);
    }
    w.push_back(first / T);
  }
  return w;
}

// The windows of one epoch, in order.
std::vector<std::int64_t> epoch_order(BatchLoader& loader, int B, int T) {
  std::vector<std::int64_t> order;
  const std::uint64_t epoch = loader.state().epoch;
  for (std::uint64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    EXPECT_EQ(loader.state().epoch, epoch);
    const std::vector<std::int64_t> w = batch_windows(next_batch(loader, B, T), B, T);
    order.insert(order.end(), w.begin(), w.end());
  }
  EXPECT_EQ(loader.state().epoch, epoch + 1);
  EXPECT_EQ(loader.state().position, 0u);
  return order;
}

TEST(BatchLoaderOn, EveryWindowOncePerEpoch) {
  // n = 161, T = 8: W = 160/8 = 20 windows; B = 4: 5 batches cover all 20.
  const int B = 4, T = 8;
  BatchLoader loader(iota_tokens(161), B, T, Shuffle::on, 42);
  EXPECT_EQ(loader.batches_per_epoch(), 5u);
  std::set<std::vector<std::int64_t>> orders;
  for (int e = 0; e < 4; ++e) {
    const std::vector<std::int64_t> order = epoch_order(loader, B, T);
    std::vector<std::int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> all(20);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(sorted, all) << "epoch " << e;
    orders.insert(order);
  }
  EXPECT_EQ(orders.size(), 4u);  // each epoch draws its own order
}

TEST(BatchLoaderOn, PartialLastBatchStartsNextEpoch) {
  // n = 100, T = 4: W = 99/4 = 24 windows (the last covers tokens 92..96); B = 5:
  // 4 batches of distinct windows, the 4 left over are skipped.
  const int B = 5, T = 4;
  BatchLoader loader(iota_tokens(100), B, T, Shuffle::on, 7);
  EXPECT_EQ(loader.batches_per_epoch(), 4u);
  for (int e = 0; e < 3; ++e) {
    const std::vector<std::int64_t> order = epoch_order(loader, B, T);
    ASSERT_EQ(order.size(), 20u);
    const std::set<std::int64_t> distinct(order.begin(), order.end());
    EXPECT_EQ(distinct.size(), 20u);
    EXPECT_GE(*distinct.begin(), 0);
    EXPECT_LE(*distinct.rbegin(), 23);
  }
}

TEST(BatchLoaderOn, SeedDecidesTheOrder) {
  const int B = 2, T = 4;
  auto first_epochs = [&](std::uint64_t seed) {
    BatchLoader loader(iota_tokens(257), B, T, Shuffle::on, seed);  // 64 windows
    std::vector<std::int64_t> order = epoch_order(loader, B, T);
    const std::vector<std::int64_t> second = epoch_order(loader, B, T);
    order.insert(order.end(), second.begin(), second.end());
    return order;
  };
  const std::vector<std::int64_t> a = first_epochs(1), b = first_epochs(1), c = first_epochs(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<std::int64_t> identity(64);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(std::vector<std::int64_t>(a.begin(), a.begin() + 64), identity);
}

// ---------------------------------------------------------------- state

// A loader restored from any saved state continues exactly like the uninterrupted one,
// across epoch boundaries, including from a fresh loader and after a partial run.
void check_resume(Shuffle shuffle) {
  const int B = 3, T = 5;
  const std::vector<std::int32_t> tokens = iota_tokens(200);  // 13 batches/epoch (off), 39 windows
  BatchLoader reference(tokens, B, T, shuffle, 99);
  const std::uint64_t per_epoch = reference.batches_per_epoch();
  std::vector<BatchLoader::State> states;
  std::vector<Batch> batches;
  for (std::uint64_t i = 0; i < 3 * per_epoch + 2; ++i) {
    states.push_back(reference.state());
    batches.push_back(next_batch(reference, B, T));
  }
  for (std::size_t from : {std::size_t{0}, std::size_t{1}, std::size_t(per_epoch - 1),
                           std::size_t(per_epoch), std::size_t(2 * per_epoch + 3)}) {
    BatchLoader resumed(tokens, B, T, shuffle, 99);
    next_batch(resumed, B, T);  // its own position and epoch must not matter
    resumed.set_state(states[from]);
    EXPECT_EQ(resumed.state().position, states[from].position);
    EXPECT_EQ(resumed.state().epoch, states[from].epoch);
    for (std::size_t i = from; i < batches.size(); ++i) {
      ASSERT_EQ(next_batch(resumed, B, T), batches[i]) << "resumed at " << from << ", batch " << i;
    }
  }
}

TEST(BatchLoaderState, ResumeSequential) {
  check_resume(Shuffle::off);
}

TEST(BatchLoaderState, ResumeShuffled) {
  check_resume(Shuffle::on);
}

TEST(BatchLoaderState, ImpossibleStateIsRejected) {
  BatchLoader off(iota_tokens(100), 2, 4, Shuffle::off, 0);
  off.set_state({91, 3});  // 91 + 9 = 100 fits
  EXPECT_EQ(next_batch(off, 2, 4).targets.back(), 99);
  expect_error<InvalidArgument>([&] { off.set_state({92, 0}); }, {"position 92"});
  BatchLoader on(iota_tokens(100), 2, 4, Shuffle::on, 0);  // 24 windows
  on.set_state({22, 5});
  expect_error<InvalidArgument>([&] { on.set_state({23, 0}); }, {"position 23"});
}

}  // namespace
}  // namespace adacc::train
