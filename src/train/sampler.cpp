// Sampling text from a model (see sampler.h).
#include "adacc/train/sampler.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/ops/matmul.h"
#include "adacc/runtime/step_executor.h"
#include "adacc/train/checkpoint.h"

namespace adacc::train {

namespace {

// Byte-level or sentencepiece tokens <-> text.
class Tokenizer {
 public:
  Tokenizer(const SampleOptions& o, int vocab) {
    if (!o.sentencepiece_model.empty()) {
      const auto status = sp_.Load(o.sentencepiece_model.string());
      if (!status.ok()) {
        throw InvalidArgument("[sample] cannot load sentencepiece model '" +
                              o.sentencepiece_model.string() + "': " + status.ToString());
      }
      bpe_ = true;
    } else if (vocab > 256) {
      throw InvalidArgument("[sample] the model has V=" + std::to_string(vocab) +
                            " tokens; pass the sentencepiece model it was trained with "
                            "(--sentencepiece FILE)");
    }
  }
  std::vector<int> encode(const std::string& text) {
    if (bpe_) return sp_.EncodeAsIds(text);
    return std::vector<int>(reinterpret_cast<const unsigned char*>(text.data()),
                            reinterpret_cast<const unsigned char*>(text.data()) + text.size());
  }
  std::string decode(int token) {
    if (bpe_) return sp_.DecodeIds({token});
    return std::string(1, static_cast<char>(token));
  }

 private:
  sentencepiece::SentencePieceProcessor sp_;
  bool bpe_ = false;
};

model::ModelConfig config_of(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) return read_checkpoint_config(path);
  return read_model_config(path);
}

}  // namespace

std::string sample(const SampleOptions& o, const std::function<void(std::string_view)>& on_text) {
  if (o.tokens < 0) {
    throw InvalidArgument("[sample] --tokens must be >= 0, got " + std::to_string(o.tokens));
  }
  if (!(o.temperature > 0) || !std::isfinite(o.temperature)) {
    throw InvalidArgument("[sample] --temperature must be a positive number, got " +
                          std::to_string(o.temperature));
  }
  if (o.top_k < 0) {
    throw InvalidArgument("[sample] --top-k must be >= 0 (0: all tokens), got " +
                          std::to_string(o.top_k));
  }
  if (o.threads < 0) {
    throw InvalidArgument("[sample] --threads must be 0 (all cores) or positive, got " +
                          std::to_string(o.threads));
  }
  if (!std::filesystem::exists(o.model)) {
    throw InvalidArgument("[sample] '" + o.model.string() + "' does not exist");
  }
  const model::ModelConfig cfg = config_of(o.model);
  Allocator alloc;
  Context ctx(alloc, o.threads, o.seed);
  model::Gpt2 gpt(cfg, alloc);
  if (std::filesystem::is_directory(o.model)) {
    model::ParamSet m(cfg, alloc, MemCategory::optimizer, "m");
    model::ParamSet v(cfg, alloc, MemCategory::optimizer, "v");
    load_checkpoint(o.model, cfg, gpt.params(), m, v);
  } else {
    load_parameters(o.model, cfg, gpt.params());
  }
  Tokenizer tok(o, cfg.vocab);
  std::vector<int> seq = tok.encode(o.prompt);
  if (seq.empty()) seq.push_back(cfg.vocab > 10 ? 10 : 0);  // no prompt: start after a newline
  for (int t : seq) {
    if (t < 0 || t >= cfg.vocab) {
      throw InvalidArgument("[sample] prompt token " + std::to_string(t) +
                            " is outside the model's vocabulary V=" + std::to_string(cfg.vocab));
    }
  }
  std::string text = o.prompt;
  std::vector<float> logits(static_cast<std::size_t>(cfg.vocab));
  std::vector<int> order(static_cast<std::size_t>(cfg.vocab));
  for (int i = 0; i < o.tokens; ++i) {
    if (o.interrupt != nullptr && o.interrupt->load()) break;
    const int T = static_cast<int>(std::min<std::size_t>(seq.size(), cfg.max_seq));
    const model::StepGraph graph = gpt.build_graph(1, T);
    runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
    Tensor tokens = Tensor::empty(alloc, {1, T}, DType::int32, MemCategory::activations, "tokens");
    std::copy(seq.end() - T, seq.end(), tokens.data<std::int32_t>());
    const Tensor h = exec.features(tokens);  // (1,T,C)
    // logits (1,V) = h[T-1] (1,C) @ wte[0:V]^T
    ops::sgemm(ctx, ops::Trans::no, ops::Trans::yes, 1, cfg.vocab, cfg.n_embd, 1.0f,
               h.data<float>() + static_cast<std::int64_t>(T - 1) * cfg.n_embd, cfg.n_embd,
               gpt.params().wte.data<float>(), cfg.n_embd, 0.0f, logits.data(), cfg.vocab);
    int candidates = cfg.vocab;
    for (int v = 0; v < cfg.vocab; ++v) order[static_cast<std::size_t>(v)] = v;
    if (o.top_k > 0 && o.top_k < cfg.vocab) {
      candidates = o.top_k;
      std::partial_sort(order.begin(), order.begin() + candidates, order.end(),
                        [&](int a, int b) { return logits[a] > logits[b]; });
    }
    float max_logit = -INFINITY;
    for (int c = 0; c < candidates; ++c) max_logit = std::max(max_logit, logits[order[c]]);
    double total = 0;
    std::vector<double> p(static_cast<std::size_t>(candidates));
    for (int c = 0; c < candidates; ++c) {
      p[c] = std::exp((logits[order[c]] - max_logit) / o.temperature);
      total += p[c];
    }
    double u = ctx.rng().uniform() * total;
    int next = order[static_cast<std::size_t>(candidates - 1)];
    for (int c = 0; c < candidates; ++c) {
      u -= p[c];
      if (u <= 0) {
        next = order[c];
        break;
      }
    }
    seq.push_back(next);
    const std::string piece = tok.decode(next);
    text += piece;
    if (on_text) on_text(piece);
  }
  return text;
}

}  // namespace adacc::train
