// Training data (see data.h): reads a text file or an llm.c token shard into a token
// stream in one pass, splits it into train and validation parts, and cuts it into
// batches, either sequentially as llm.c does or in a per-epoch shuffled window order
// that is a pure function of (seed, epoch) so that a loader's state is two integers.
#include "adacc/train/data.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <system_error>

#include "adacc/core/error.h"

namespace adacc::train {

namespace {

namespace fs = std::filesystem;

constexpr std::int32_t kShardMagic = 20240520;
constexpr std::int32_t kModelMagic = 20240326;  // llm.c model checkpoints
constexpr std::int32_t kShardVersion = 1;
constexpr std::size_t kShardHeaderInts = 256;
constexpr std::size_t kShardHeaderBytes = kShardHeaderInts * sizeof(std::int32_t);  // 1024
constexpr int kGpt2Vocab = 50257;
constexpr std::uint64_t kMaxTextBytes = std::uint64_t{16} << 30;

std::string quoted(const fs::path& path) {
  std::string s = "'";  // (not "'" + ...: GCC 12 warns falsely, -Wrestrict)
  s += path.string();
  s += '\'';
  return s;
}

// Messages are one line; library messages (sentencepiece's) may hold newlines.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Checks that `path` is a non-empty regular file and returns its size in bytes.
// `what` names the role in messages ("file", "sentencepiece model").
std::uint64_t require_regular_file(const fs::path& path, const char* what) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) {
    throw InvalidArgument("[data] " + std::string(what) + " " + quoted(path) + " does not exist");
  }
  if (fs::is_directory(st)) {
    throw InvalidArgument("[data] " + std::string(what) + " " + quoted(path) +
                          " is a directory, not a file");
  }
  if (!fs::is_regular_file(st)) {
    throw InvalidArgument("[data] " + std::string(what) + " " + quoted(path) +
                          " is not a regular file");
  }
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    throw BackendError("[data] cannot get the size of " + quoted(path) + ": " + ec.message());
  }
  if (size == 0) {
    throw InvalidArgument("[data] " + std::string(what) + " " + quoted(path) + " is empty");
  }
  return size;
}

File open_file(const fs::path& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    throw BackendError("[data] cannot open " + quoted(path) + ": " + std::strerror(errno));
  }
  return f;
}

// Reads exactly `n` bytes or throws (the file shrank, or the OS failed).
void read_exact(std::FILE* f, void* dst, std::size_t n, const fs::path& path) {
  if (n == 0) return;
  const std::size_t got = std::fread(dst, 1, n, f);
  if (got != n) {
    const std::string why = std::ferror(f) ? std::strerror(errno) : "unexpected end of file";
    throw BackendError("[data] reading " + quoted(path) + ": wanted " + std::to_string(n) +
                       " bytes, got " + std::to_string(got) + " (" + why + ")");
  }
}

std::int32_t le_i32(const unsigned char* p) {
  const std::uint32_t u = std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 |
                          std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
  return static_cast<std::int32_t>(u);
}

// An llm.c shard whose magic has been read: the rest of the header, then `ntok` uint16
// little-endian tokens, read in chunks straight into the int32 stream (no second copy
// of the file), every id checked.
TokenStream read_shard(std::FILE* f, const fs::path& path, std::uint64_t size) {
  if (size < kShardHeaderBytes) {
    throw FormatError("[data] llm.c shard " + quoted(path) + " has a truncated header: expected " +
                      std::to_string(kShardHeaderBytes) + " bytes, found " + std::to_string(size));
  }
  // The caller has read the magic, the header's first 4 bytes.
  unsigned char header[kShardHeaderBytes];
  read_exact(f, header + 4, kShardHeaderBytes - 4, path);
  const std::int32_t version = le_i32(header + 4);
  if (version != kShardVersion) {
    throw FormatError("[data] llm.c shard " + quoted(path) + " has version " +
                      std::to_string(version) + ", expected " + std::to_string(kShardVersion));
  }
  const std::int32_t ntok = le_i32(header + 8);
  if (ntok <= 0) {
    throw FormatError("[data] llm.c shard " + quoted(path) + " says it holds " +
                      std::to_string(ntok) + " tokens");
  }
  const std::uint64_t expected = kShardHeaderBytes + 2 * static_cast<std::uint64_t>(ntok);
  if (size != expected) {
    throw FormatError("[data] llm.c shard " + quoted(path) + " is " +
                      std::string(size < expected ? "truncated" : "too long") + ": header says " +
                      std::to_string(ntok) + " tokens, expected " + std::to_string(expected) +
                      " bytes, found " + std::to_string(size));
  }

  TokenStream out;
  out.format = TokenFormat::llmc_shard;
  out.vocab = kGpt2Vocab;
  out.source = path.string();
  out.tokens.resize(static_cast<std::size_t>(ntok));

  constexpr std::size_t kChunkTokens = std::size_t{1} << 19;  // 1 MiB of uint16
  std::vector<unsigned char> chunk(2 * std::min<std::size_t>(kChunkTokens, out.tokens.size()));
  for (std::size_t begin = 0; begin < out.tokens.size(); begin += kChunkTokens) {
    const std::size_t n = std::min(kChunkTokens, out.tokens.size() - begin);
    read_exact(f, chunk.data(), 2 * n, path);
    std::int32_t* dst = out.tokens.data() + begin;
    std::int32_t max_id = 0;
    // chunk (2n bytes, little-endian uint16) -> dst (n)
    for (std::size_t i = 0; i < n; ++i) {
      const std::int32_t t = chunk[2 * i] | chunk[2 * i + 1] << 8;
      dst[i] = t;
      max_id = std::max(max_id, t);
    }
    if (max_id >= kGpt2Vocab) {
      const std::size_t i = static_cast<std::size_t>(
          std::find_if(dst, dst + n, [](std::int32_t t) { return t >= kGpt2Vocab; }) - dst);
      throw FormatError("[data] llm.c shard " + quoted(path) + ": token " +
                        std::to_string(begin + i) + " is " + std::to_string(dst[i]) +
                        ", not below the GPT-2 vocab size " + std::to_string(kGpt2Vocab));
    }
  }
  return out;
}

TokenStream encode_sentencepiece(const std::string& text, const fs::path& path,
                                 const fs::path& model_path) {
  require_regular_file(model_path, "sentencepiece model");
  sentencepiece::SentencePieceProcessor sp;
  if (const auto status = sp.Load(model_path.string()); !status.ok()) {
    throw InvalidArgument("[data] cannot load sentencepiece model " + quoted(model_path) + ": " +
                          one_line(status.ToString()));
  }
  std::vector<int> ids;
  if (const auto status = sp.Encode(text, &ids); !status.ok()) {
    throw InvalidArgument("[data] sentencepiece model " + quoted(model_path) + " cannot encode " +
                          quoted(path) + ": " + one_line(status.ToString()));
  }
  TokenStream out;
  out.format = TokenFormat::sentencepiece;
  out.vocab = sp.GetPieceSize();
  out.source = path.string();
  out.tokens.assign(ids.begin(), ids.end());
  return out;
}

// A 64-bit finalizer (splitmix64's) to mix (seed, epoch) into one Rng seed.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, bound) without modulo bias (rejection of the short last interval).
std::uint64_t uniform_below(Rng& rng, std::uint64_t bound) {
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  std::uint64_t r;
  do {
    r = rng.next_u64();
  } while (r >= limit);
  return r % bound;
}

}  // namespace

TokenStream load_tokens(const std::filesystem::path& path, const LoadOptions& options) {
  const std::uint64_t size = require_regular_file(path, "file");
  File f = open_file(path);

  unsigned char magic[4] = {0, 0, 0, 0};
  const std::size_t head = static_cast<std::size_t>(std::min<std::uint64_t>(size, 4));
  read_exact(f.get(), magic, head, path);
  if (head == 4 && le_i32(magic) == kShardMagic) return read_shard(f.get(), path, size);
  if (head == 4 && le_i32(magic) == kModelMagic) {
    throw FormatError("[data] " + path.string() +
                      " is an llm.c model checkpoint, not training data; give it to --init");
  }

  // Text: the whole file in one read, if it is not absurdly large.
  if (size > kMaxTextBytes) {
    throw InvalidArgument("[data] text file " + quoted(path) + " is " + std::to_string(size) +
                          " bytes; text files are limited to 16 GiB (as tokens they take four "
                          "times that in memory); convert it to llm.c shards");
  }
  std::string text(static_cast<std::size_t>(size), '\0');
  std::memcpy(text.data(), magic, head);
  read_exact(f.get(), text.data() + head, text.size() - head, path);
  f.reset();
  // Text has no NUL bytes; a binary file without the shard magic is a shard with a
  // wrong magic (or not data at all), and training on its bytes would be a mistake.
  const std::size_t probe = std::min<std::size_t>(text.size(), 1024);
  // NOLINTNEXTLINE(bugprone-not-null-terminated-result): looks for a NUL byte, not a string
  if (std::memchr(text.data(), '\0', probe) != nullptr) {
    throw FormatError("[data] " + path.string() +
                      " is binary but not an llm.c token shard (magic " +
                      std::to_string(head == 4 ? le_i32(magic) : 0) + ", expected " +
                      std::to_string(kShardMagic) + "); text files are read as bytes");
  }

  if (!options.sentencepiece_model.empty()) {
    return encode_sentencepiece(text, path, options.sentencepiece_model);
  }
  TokenStream out;
  out.format = TokenFormat::bytes;
  out.vocab = 256;
  out.source = path.string();
  out.tokens.resize(text.size());
  // text (n bytes) -> tokens (n), each byte as 0..255
  const auto* src = reinterpret_cast<const unsigned char*>(text.data());
  std::int32_t* dst = out.tokens.data();
  for (std::size_t i = 0; i < text.size(); ++i) dst[i] = src[i];
  return out;
}

TrainValSplit split_train_val(const std::vector<std::int32_t>& tokens, double val_fraction,
                              std::size_t min_tokens) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
    std::ostringstream msg;
    msg << "[data] val_fraction " << val_fraction << " is not in [0, 1)";
    throw InvalidArgument(msg.str());
  }
  const std::size_t n = tokens.size();
  const auto n_val = static_cast<std::size_t>(std::floor(static_cast<double>(n) * val_fraction));
  const std::size_t n_train = n - n_val;
  if (n_train < min_tokens || n_val < min_tokens) {
    std::ostringstream msg;
    msg << "[data] splitting " << n << " tokens with val_fraction " << val_fraction << " gives "
        << n_train << " train and " << n_val << " validation tokens, but each part needs at least "
        << min_tokens << " (use more data, a smaller batch or another val_fraction)";
    throw InvalidArgument(msg.str());
  }
  TrainValSplit out;
  out.train.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n_train));
  out.val.assign(tokens.begin() + static_cast<std::ptrdiff_t>(n_train), tokens.end());
  return out;
}

BatchLoader::BatchLoader(std::vector<std::int32_t> tokens, int B, int T, Shuffle shuffle,
                         std::uint64_t seed)
    : tokens_(std::move(tokens)), B_(B), T_(T), shuffle_(shuffle), seed_(seed) {
  if (B <= 0 || T <= 0) {
    throw InvalidArgument("[data] batch loader needs B > 0 and T > 0, got B=" + std::to_string(B) +
                          " T=" + std::to_string(T));
  }
  const auto n = static_cast<std::uint64_t>(tokens_.size());
  const auto need = static_cast<std::uint64_t>(B_ * T_ + 1);
  if (n < need) {
    throw InvalidArgument("[data] batch loader: the stream holds " + std::to_string(n) +
                          " tokens, fewer than B*T+1 = " + std::to_string(need) +
                          " (B=" + std::to_string(B) + ", T=" + std::to_string(T) + ")");
  }
  windows_ = (n - 1) / static_cast<std::uint64_t>(T_);
}

std::uint64_t BatchLoader::batches_per_epoch() const {
  return (tokens_.size() - 1) / static_cast<std::uint64_t>(B_ * T_);
}

void BatchLoader::set_state(const State& state) {
  const auto n = static_cast<std::uint64_t>(tokens_.size());
  // Written without sums that could wrap: the state comes from a file.
  const auto bt = static_cast<std::uint64_t>(B_ * T_);
  const bool fits = shuffle_ == Shuffle::off
                        ? state.position < n && n - state.position >= bt + 1
                        : state.position <= windows_ &&
                              windows_ - state.position >= static_cast<std::uint64_t>(B_);
  if (!fits) {
    throw InvalidArgument("[data] batch loader state position " + std::to_string(state.position) +
                          (shuffle_ == Shuffle::off ? " (token offset)" : " (window index)") +
                          " leaves no whole batch (B=" + std::to_string(B_) +
                          ", T=" + std::to_string(T_) + ", " + std::to_string(n) +
                          " tokens); was it saved with other data, B or T?");
  }
  state_ = state;
}

void BatchLoader::ensure_order() {
  if (order_valid_ && order_epoch_ == state_.epoch) return;
  order_.resize(windows_);
  for (std::uint64_t k = 0; k < windows_; ++k) order_[k] = k;
  Rng rng(mix64(seed_ ^ mix64(state_.epoch + 0x9E3779B97F4A7C15ull)));
  // Fisher-Yates: position i takes a uniform pick of the windows [0, i].
  for (std::uint64_t i = windows_ - 1; i > 0; --i) {
    std::swap(order_[i], order_[uniform_below(rng, i + 1)]);
  }
  order_epoch_ = state_.epoch;
  order_valid_ = true;
}

void BatchLoader::next(std::int32_t* inputs, std::int32_t* targets) {
  // inputs (B,T), targets (B,T)
  const std::int32_t* tok = tokens_.data();
  const auto T = static_cast<std::size_t>(T_);
  if (shuffle_ == Shuffle::off) {
    const std::size_t bt = static_cast<std::size_t>(B_) * T;
    const std::int32_t* src = tok + state_.position;
    std::copy(src, src + bt, inputs);
    std::copy(src + 1, src + bt + 1, targets);
    state_.position += bt;
    if (state_.position + bt + 1 > tokens_.size()) {
      state_.position = 0;
      ++state_.epoch;
    }
    return;
  }
  ensure_order();
  for (std::int64_t b = 0; b < B_; ++b) {
    const std::int32_t* src = tok + order_[state_.position + b] * T;  // window (T+1)
    std::copy(src, src + T, inputs + b * T_);
    std::copy(src + 1, src + T + 1, targets + b * T_);
  }
  state_.position += static_cast<std::uint64_t>(B_);
  if (state_.position + static_cast<std::uint64_t>(B_) > windows_) {
    state_.position = 0;
    ++state_.epoch;
  }
}

}  // namespace adacc::train
