// Summaries and explanations of plans (see plan_report.h).
#include "adacc/plan/plan_report.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/allocator.h"
#include "adacc/core/error.h"

namespace adacc::plan {

namespace {

using model::StepGraph;
using model::TensorId;
using model::TensorInfo;
using model::TensorKind;
using runtime::Decision;
using runtime::Plan;
using runtime::Policy;

void check_sizes(const StepGraph& graph, const Plan& plan) {
  if (plan.decisions.size() != graph.tensors().size()) runtime::validate(graph, plan);  // throws
}

bool is_saved_activation(const StepGraph& graph, const std::vector<bool>& saved, TensorId id) {
  return graph.tensor(id).kind == TensorKind::activation && saved[static_cast<std::size_t>(id)];
}

// "h3.fc.out" -> "fc.out" for block tensors; other names unchanged.
std::string name_in_block(const TensorInfo& t) {
  if (t.layer < 0) return t.name;
  const std::size_t dot = t.name.find('.');
  return dot == std::string::npos ? t.name : t.name.substr(dot + 1);
}

// Choices listed per tensor by the explanation (best bytes per ms first), besides the plan's.
constexpr int kChoicesShown = 3;

std::string format_rate(double bytes_per_ms) {
  if (std::isinf(bytes_per_ms)) return "free";
  return format_bytes(static_cast<std::size_t>(std::llround(bytes_per_ms))) + "/ms";
}

}  // namespace

double ChoicePrice::bytes_per_ms() const {
  if (seconds <= 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(bytes_saved) / (seconds * 1e3);
}

std::map<model::TensorRole, RoleCounts> count_by_role(const StepGraph& graph, const Plan& plan) {
  check_sizes(graph, plan);
  const std::vector<bool> saved = runtime::saved_tensors(graph);
  std::map<model::TensorRole, RoleCounts> out;
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    if (!is_saved_activation(graph, saved, id)) continue;
    RoleCounts& c = out[graph.tensor(id).role];
    const Decision& d = plan.decisions[i];
    if (d.policy == Policy::keep) ++c.keep;
    if (d.policy == Policy::recompute) ++c.recompute;
    if (d.policy == Policy::compress) ++c.compress[d.codec];
  }
  return out;
}

std::string format_role_summary(const StepGraph& graph, const Plan& plan) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "  %-12s %5s %10s  %s\n", "role", "keep", "recompute",
                "compressed");
  out += line;
  for (const auto& [role, c] : count_by_role(graph, plan)) {
    std::string compressed;
    for (const auto& [codec, n] : c.compress) {
      if (!compressed.empty()) compressed += ", ";
      compressed += codec;
      compressed += " x";
      compressed += std::to_string(n);
    }
    if (compressed.empty()) compressed = "-";
    std::snprintf(line, sizeof line, "  %-12s %5d %10d  %s\n",
                  std::string(model::tensor_role_name(role)).c_str(), c.keep, c.recompute,
                  compressed.c_str());
    out += line;
  }
  return out;
}

std::vector<ChoicePrice> price_choices(const StepGraph& graph, const StepCosts& costs,
                                       TensorId tensor, double tolerance) {
  const TensorInfo& t = graph.tensor(tensor);
  if (costs.forward_seconds.size() != graph.ops().size() ||
      costs.codecs.size() != graph.tensors().size()) {
    throw InvalidArgument("[plan] the costs are for another graph (" +
                          std::to_string(costs.forward_seconds.size()) + " ops, " +
                          std::to_string(costs.codecs.size()) + " tensors; this graph has " +
                          std::to_string(graph.ops().size()) + " and " +
                          std::to_string(graph.tensors().size()) + ")");
  }
  std::vector<ChoicePrice> out;
  if (t.kind != TensorKind::activation) return out;
  if (runtime::is_recomputable(graph, tensor)) {
    ChoicePrice p;
    p.choice = "recompute";
    p.bytes_saved = t.nbytes();
    p.seconds = costs.forward_seconds[static_cast<std::size_t>(t.producer)];
    out.push_back(p);
  }
  for (const CodecCost& c : costs.codecs[static_cast<std::size_t>(tensor)]) {
    ChoicePrice p;
    p.choice = c.codec;
    p.bytes_saved = t.nbytes() > c.encoded_bytes ? t.nbytes() - c.encoded_bytes : 0;
    p.seconds = c.encode_seconds + c.decode_seconds;
    p.grad_error = c.grad_error;
    p.admissible = c.grad_error <= tolerance;
    out.push_back(p);
  }
  return out;
}

std::string format_explanation(const StepGraph& graph, const Plan& plan, const StepCosts& costs,
                               double tolerance) {
  check_sizes(graph, plan);
  const std::vector<bool> saved = runtime::saved_tensors(graph);
  // Rows: one per (name in block, choice); consecutive layers with the same row collapse.
  struct Row {
    std::string key;  // name in block + what every choice costs + the decision
    std::string text;
    int first_layer = -1, last_layer = -1;
  };
  std::vector<Row> rows;
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    if (!is_saved_activation(graph, saved, id)) continue;
    const TensorInfo& t = graph.tensor(id);
    // The admissible choices, best rate first; the plan's own choice always shown.
    std::vector<ChoicePrice> choices = price_choices(graph, costs, id, tolerance);
    const std::string chosen = runtime::decision_text(plan.decisions[i]);
    int inadmissible = 0;
    std::erase_if(choices, [&](const ChoicePrice& p) {
      const bool drop = !p.admissible && p.choice != chosen;
      inadmissible += drop ? 1 : 0;
      return drop;
    });
    std::stable_sort(choices.begin(), choices.end(),
                     [](const ChoicePrice& x, const ChoicePrice& y) {
                       return x.bytes_per_ms() > y.bytes_per_ms();
                     });
    std::string prices;
    int shown = 0;
    for (const ChoicePrice& p : choices) {
      if (shown >= kChoicesShown && p.choice != chosen) continue;
      ++shown;
      char cell[160];
      std::snprintf(cell, sizeof cell, "%s%s %s in %.3f ms (%s)%s", p.choice == chosen ? "*" : "",
                    p.choice.c_str(), format_bytes(p.bytes_saved).c_str(), p.seconds * 1e3,
                    format_rate(p.bytes_per_ms()).c_str(),
                    p.admissible ? "" : " [gradient error above tolerance]");
      if (!prices.empty()) prices += "; ";
      prices += cell;
    }
    const int hidden = static_cast<int>(choices.size()) - shown;
    if (hidden > 0) prices += "; " + std::to_string(hidden) + " more";
    if (inadmissible > 0) prices += "; " + std::to_string(inadmissible) + " codecs above tolerance";
    if (prices.empty()) prices = "nothing but keep (not recomputable, no codec measured)";
    char head[200];
    std::snprintf(head, sizeof head, "%-16s %10s  %-14s ", name_in_block(t).c_str(),
                  format_bytes(t.nbytes()).c_str(),
                  runtime::decision_text(plan.decisions[i]).c_str());
    std::string key = head;
    key += prices;
    // A row continues the previous one with the same key when the layers are consecutive.
    bool merged = false;
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
      if (it->key == key && t.layer >= 0 && it->last_layer == t.layer - 1) {
        it->last_layer = t.layer;
        merged = true;
        break;
      }
    }
    if (!merged) rows.push_back({key, key, t.layer, t.layer});
  }
  std::string out =
      "per saved tensor: bytes, the plan's choice, then the best choices by bytes saved per ms "
      "of step time added (the plan's marked *; alone, as if its inputs were at hand)\n";
  for (const Row& r : rows) {
    std::string where;
    if (r.first_layer < 0) {
      where = "       ";
    } else if (r.first_layer == r.last_layer) {
      where = "h" + std::to_string(r.first_layer);
    } else {
      where = "h" + std::to_string(r.first_layer) + "-h" + std::to_string(r.last_layer);
    }
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "  %-8s ", where.c_str());
    out += prefix;
    out += r.text;
    out += '\n';
  }
  return out;
}

}  // namespace adacc::plan
