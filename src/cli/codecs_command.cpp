// `adacc codecs` (see codecs_command.h). The batch is the first B*T+1 tokens of the
// validation split (the last 5% of the data), so that it is text the model did not train
// on and the same in every run.
#include "codecs_command.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/runtime/codec_measurement.h"
#include "adacc/train/checkpoint.h"
#include "adacc/train/data.h"

namespace adacc::cli {

void add_codecs_command(CLI::App& app, CodecsArgs& a) {
  CLI::App* c = app.add_subcommand(
      "codecs", "Measure every codec on the activations of one step of a trained model");
  c->add_flag("--list", a.list, "List the codecs, their parameters and tensor roles, and exit");
  c->add_option("--init", a.init, "Trained weights (safetensors or llm.c checkpoint)");
  c->add_option("--data", a.data, "Text file or llm.c shard; its validation split gives the batch");
  c->add_option("--model", a.model, "Model shape (default: the checkpoint's)");
  c->add_option("--batch", a.batch, "Sequences per batch (B)")->capture_default_str();
  c->add_option("--seq", a.seq, "Tokens per sequence (T)")->capture_default_str();
  c->add_option("--attention", a.attention, "naive (saves probabilities) or flash")
      ->capture_default_str();
  c->add_option("--codecs", a.codecs, "Comma-separated codec names (default: all)");
  c->add_option("--threads", a.threads, "Threads (0: all cores)")->capture_default_str();
  c->add_flag("--per-tensor", a.per_tensor, "One line per tensor instead of per role");
}

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Summary {
  int tensors = 0;
  double ratio = 0;
  std::vector<double> tensor_err, grad_err, weight_err;
  double bytes = 0, enc_s = 0, dec_s = 0;
};

std::string percent(double x) {
  char b[32];
  if (x < 0) return "-";
  std::snprintf(b, sizeof b, x < 1e-3 ? "%.2e" : "%.3f", x * 100);
  return b;
}

}  // namespace

int run_codecs(const CodecsArgs& a) {
  if (a.list) {
    for (const std::string& name : compress::codec_names()) {
      const compress::Codec& c = compress::codec_by_name(name);
      std::string roles;
      for (int r = 0; r < model::kNumTensorRoles; ++r) {
        const auto role = static_cast<model::TensorRole>(r);
        if (c.applies_to(role)) {
          roles += (roles.empty() ? "" : ", ") + std::string(model::tensor_role_name(role));
        }
      }
      std::printf("%-15s %s\n%-15s roles: %s\n", name.c_str(), c.description().c_str(), "",
                  roles.c_str());
    }
    return 0;
  }
  if (a.init.empty() || a.data.empty()) {
    throw InvalidArgument("[codecs] need --init (trained weights) and --data, or --list");
  }
  model::ModelConfig cfg =
      a.model.empty() ? train::read_model_config(a.init) : model::parse_config(a.model);
  cfg.attention = ops::attention_kind_from_name(a.attention, "[codecs] --attention");
  if (a.batch < 1 || a.seq < 1 || a.seq > cfg.max_seq) {
    throw InvalidArgument("[codecs] need --batch >= 1 and 1 <= --seq <= " +
                          std::to_string(cfg.max_seq));
  }
  const train::TokenStream stream = train::load_tokens(a.data);
  const std::size_t need = static_cast<std::size_t>(a.batch) * a.seq + 1;
  const train::TrainValSplit split = train::split_train_val(stream.tokens, 0.05, need);
  for (std::size_t i = 0; i < need; ++i) {
    if (split.val[i] >= cfg.vocab) {
      throw InvalidArgument("[codecs] token " + std::to_string(split.val[i]) + " of " + a.data +
                            " is outside the model's vocabulary of " + std::to_string(cfg.vocab));
    }
  }

  Allocator alloc;
  Context ctx(alloc, Context::resolve_threads(a.threads), 1);
  model::Gpt2 gpt(cfg, alloc);
  train::load_parameters(a.init, cfg, gpt.params());
  Tensor tokens =
      Tensor::empty(alloc, {a.batch, a.seq}, DType::int32, MemCategory::workspace, "tokens");
  Tensor targets =
      Tensor::empty(alloc, {a.batch, a.seq}, DType::int32, MemCategory::workspace, "targets");
  std::copy_n(split.val.begin(), need - 1, tokens.data<std::int32_t>());
  std::copy_n(split.val.begin() + 1, need - 1, targets.data<std::int32_t>());
  const model::StepGraph graph = gpt.build_graph(a.batch, a.seq);
  const std::vector<runtime::CodecMeasurement> ms =
      runtime::measure_codecs(graph, gpt.params(), ctx, tokens, targets, split_commas(a.codecs));

  std::printf(
      "model: %s, batch %d x %d from the validation split of %s, %s attention, %d threads\n",
      cfg.describe().c_str(), a.batch, a.seq, a.data.c_str(), a.attention.c_str(), ctx.threads());
  std::printf(
      "errors are relative L2 norms in %%; grad = every gradient the backward of the ops "
      "that save the tensor writes, dW = their weight gradients only\n\n");
  if (a.per_tensor) {
    std::printf("| tensor | codec | ratio | tensor err %% | grad err %% | dW err %% |\n");
    std::printf("|---|---|---:|---:|---:|---:|\n");
    for (const auto& m : ms) {
      std::printf("| %s | %s | %.2f | %s | %s | %s |\n", graph.tensor(m.tensor).name.c_str(),
                  m.codec.c_str(), m.ratio, percent(m.tensor_error).c_str(),
                  percent(m.grad_error).c_str(), percent(m.weight_grad_error).c_str());
    }
    return 0;
  }
  // Per role and codec: medians over the role's tensors (all layers).
  std::map<std::pair<int, std::string>, Summary> by;
  std::vector<std::pair<int, std::string>> order;
  for (const auto& m : ms) {
    const model::TensorInfo& t = graph.tensor(m.tensor);
    const auto key = std::make_pair(static_cast<int>(t.role), m.codec);
    if (!by.count(key)) order.push_back(key);
    Summary& s = by[key];
    ++s.tensors;
    s.ratio = m.ratio;
    s.tensor_err.push_back(m.tensor_error);
    s.grad_err.push_back(m.grad_error);
    if (m.weight_grad_error >= 0) s.weight_err.push_back(m.weight_grad_error);
    s.bytes += static_cast<double>(t.nbytes());
    s.enc_s += m.encode_seconds;
    s.dec_s += m.decode_seconds;
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::printf(
      "| role | codec | tensors | ratio | tensor err %% | grad err %% | dW err %% | "
      "encode GB/s | decode GB/s |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& key : order) {
    const Summary& s = by[key];
    std::printf(
        "| %s | %s | %d | %.2f | %s | %s | %s | %.2f | %.2f |\n",
        std::string(model::tensor_role_name(static_cast<model::TensorRole>(key.first))).c_str(),
        key.second.c_str(), s.tensors, s.ratio, percent(median(s.tensor_err)).c_str(),
        percent(median(s.grad_err)).c_str(),
        s.weight_err.empty() ? "-" : percent(median(s.weight_err)).c_str(), s.bytes / s.enc_s / 1e9,
        s.bytes / s.dec_s / 1e9);
  }
  return 0;
}

}  // namespace adacc::cli
