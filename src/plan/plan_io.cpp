// Plan files (JSON) and the plan table (see plan_io.h).
//
// Files name tensors rather than index them, and list only the differences from
// keep_all_plan, so a plan written for one batch shape reads back for another of the
// same model and a hand-edited plan stays a few lines long. Reading is strict: a typo in
// a tensor name or a policy is an error, never a silently ignored entry.
#include "adacc/plan/plan_io.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/allocator.h"
#include "adacc/core/error.h"
#include "adacc/core/excerpt.h"
#include "adacc/core/json_input.h"

namespace adacc::plan {

namespace {

using model::StepGraph;
using model::TensorId;
using model::TensorInfo;
using model::TensorKind;
using runtime::Decision;
using runtime::Plan;
using runtime::Policy;
using Json = nlohmann::ordered_json;

bool same_decision(const Decision& a, const Decision& b) {
  return a.policy == b.policy && (a.policy != Policy::compress || a.codec == b.codec);
}

std::string decision_cell(const Decision& d) {  // "compress:int8-g64"
  std::string s(runtime::policy_name(d.policy));
  if (d.policy == Policy::compress) s += ":" + d.codec;
  return s;
}

// One entry's value: "keep", "recompute" or {"compress": "<codec>"}.
Decision parse_decision(const std::string& name, const Json& value) {
  const std::string where = "[plan] entry '" + excerpt(name) + "': ";
  const std::string expected = "write \"keep\", \"recompute\" or {\"compress\": \"<codec>\"}";
  Decision d;
  if (value.is_string()) {
    const std::string s = value.get<std::string>();
    if (s == "keep") {
      d.policy = Policy::keep;
    } else if (s == "recompute") {
      d.policy = Policy::recompute;
    } else if (s == "compress") {
      throw InvalidArgument(where + "compress needs a codec; write {\"compress\": \"bf16\"}");
    } else {
      throw InvalidArgument(where + "unknown policy \"" + excerpt(s) + "\"; " + expected);
    }
    return d;
  }
  if (value.is_object() && value.size() == 1 && value.contains("compress") &&
      value["compress"].is_string()) {
    d.policy = Policy::compress;
    d.codec = value["compress"].get<std::string>();
    // Checked here, not only by runtime::validate, to quote a hostile name short.
    const std::vector<std::string> known = compress::codec_names();
    if (std::find(known.begin(), known.end(), d.codec) == known.end()) {
      std::string list;
      for (const std::string& n : known) list += (list.empty() ? "" : ", ") + n;
      throw InvalidArgument(where + "unknown codec '" + excerpt(d.codec) + "'; known: " + list);
    }
    return d;
  }
  throw InvalidArgument(where + "policy " + describe_json(value) + " is not one; " + expected);
}

// Rethrows an error from reading `path`'s content with the path in its message.
[[noreturn]] void rethrow_in_file(const std::string& path) {
  auto in_file = [&](const std::exception& e) {
    std::string msg = e.what();
    const std::string prefix = "[plan] ";
    if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
    return prefix + "plan file '" + path + "': " + msg;
  };
  try {
    throw;
  } catch (const PlanInfeasible& e) {
    throw PlanInfeasible(in_file(e));
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(in_file(e));
  }
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

// "h1..h3, h5, h7..h8"
std::string layer_ranges(const std::vector<int>& layers) {
  std::string out;
  for (std::size_t i = 0; i < layers.size();) {
    std::size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += "h" + std::to_string(layers[i]);
    if (j > i) out += "..h" + std::to_string(layers[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace

std::string to_json(const Plan& plan, const StepGraph& graph) {
  runtime::validate(graph, plan);
  const Plan base = runtime::keep_all_plan(graph);
  Json tensors = Json::object();
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const Decision& d = plan.decisions[i];
    if (same_decision(d, base.decisions[i])) continue;
    // Appended, not tensors[name] = ...: an ordered_json lookup is a linear search, and
    // the graph's names are distinct.
    tensors.get_ref<Json::object_t&>().emplace_back(
        graph.tensors()[i].name, d.policy == Policy::compress
                                     ? Json{{"compress", d.codec}}
                                     : Json(std::string(runtime::policy_name(d.policy))));
  }
  Json j = Json::object();
  j["planner"] = plan.planner;
  j["tensors"] = std::move(tensors);
  return j.dump(2) + "\n";
}

Plan from_json(const StepGraph& graph, std::string_view text) {
  Json j;
  try {
    j = parse_json_input(text, kMaxPlanFileBytes, "plan files are limited to 64 MiB");
  } catch (const FormatError& e) {
    throw InvalidArgument(std::string("[plan] ") + e.what());
  }
  if (!j.is_object()) {
    throw InvalidArgument("[plan] a plan is a JSON object {\"planner\": ..., \"tensors\": {...}}");
  }
  Plan plan = runtime::keep_all_plan(graph);
  plan.planner = "custom";
  for (const auto& [key, value] : j.items()) {
    if (key == "planner") {
      if (!value.is_string()) {
        throw InvalidArgument("[plan] \"planner\" must be a string but is " + describe_json(value));
      }
      plan.planner = value.get<std::string>();
    } else if (key != "tensors") {
      throw InvalidArgument("[plan] unknown key \"" + excerpt(key) +
                            "\"; a plan has \"planner\" and \"tensors\"");
    }
  }
  if (!j.contains("tensors")) return plan;
  const Json& tensors = j["tensors"];
  if (!tensors.is_object()) {
    throw InvalidArgument(
        "[plan] \"tensors\" must be an object {\"<tensor name>\": <policy>, ...} but is " +
        describe_json(tensors));
  }
  std::unordered_map<std::string_view, TensorId> ids;
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    ids.emplace(graph.tensors()[i].name, static_cast<TensorId>(i));
  }
  for (const auto& [name, value] : tensors.items()) {
    const auto it = ids.find(name);
    if (it == ids.end()) {
      throw InvalidArgument(
          "[plan] entry '" + excerpt(name) + "': no tensor of that name in this graph (" +
          std::to_string(graph.ops().size()) + " ops); is the plan for another model?");
    }
    plan.decisions[static_cast<std::size_t>(it->second)] = parse_decision(name, value);
  }
  runtime::validate(graph, plan);
  return plan;
}

Plan load_plan_file(const StepGraph& graph, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InvalidArgument("[plan] cannot read plan file '" + path + "': " + std::strerror(errno));
  }
  // Refused before reading: a plan file of gigabytes is not worth reading.
  std::error_code ec;
  if (const std::uintmax_t size = std::filesystem::file_size(path, ec);
      !ec && size > kMaxPlanFileBytes) {
    throw InvalidArgument("[plan] plan file '" + path + "' is " + std::to_string(size) +
                          " bytes; plan files are limited to 64 MiB");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw InvalidArgument("[plan] cannot read plan file '" + path + "': " + std::strerror(errno));
  }
  try {
    return from_json(graph, text.str());
  } catch (const Error&) {
    rethrow_in_file(path);
  }
}

void save_plan_file(const Plan& plan, const StepGraph& graph, const std::string& path) {
  const std::string text = to_json(plan, graph);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) out << text;
  if (out) out.close();
  if (!out) {
    throw InvalidArgument("[plan] cannot write plan file '" + path + "': " + std::strerror(errno));
  }
}

std::string format_plan_table(const StepGraph& graph, const Plan& plan) {
  if (plan.decisions.size() != graph.tensors().size()) runtime::validate(graph, plan);  // throws

  struct Row {
    TensorId id;
    std::string cells[5];  // tensor, role, shape, bytes, policy
  };
  struct Group {
    std::string title;
    int layer = -1;
    std::vector<Row> rows;
    std::string signature;  // what must match for blocks to be collapsed
  };
  std::vector<Group> groups;
  std::size_t totals_count[3] = {0, 0, 0};
  std::size_t totals_bytes[3] = {0, 0, 0};  // retained: kept, encoded, 0 for recompute
  std::size_t totals_original[3] = {0, 0, 0};
  std::size_t saved_count = 0;
  bool seen_block = false;
  std::vector<bool> saved(graph.tensors().size(), false);
  for (const auto& op : graph.ops()) {
    for (TensorId id : op->saved()) saved.at(static_cast<std::size_t>(id)) = true;
  }

  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    const TensorInfo& t = graph.tensors()[i];
    if (t.kind != TensorKind::activation || !saved[i]) continue;
    ++saved_count;
    const Decision& d = plan.decisions[i];
    const auto p = static_cast<std::size_t>(d.policy);
    totals_count[p]++;
    totals_original[p] += t.nbytes();
    if (d.policy == Policy::keep) totals_bytes[p] += t.nbytes();
    if (d.policy == Policy::compress) {
      totals_bytes[p] += compress::codec_by_name(d.codec).encoded_bytes(t.shape);
    }

    std::string title;
    if (t.layer >= 0) {
      seen_block = true;
      title = "h" + std::to_string(t.layer);
    } else {
      title = seen_block ? "after the blocks" : "before the blocks";
    }
    if (groups.empty() || groups.back().title != title) {
      groups.push_back(Group{title, t.layer, {}, {}});
    }
    Group& g = groups.back();
    g.rows.push_back(Row{id,
                         {t.name, std::string(model::tensor_role_name(t.role)), shape_str(t.shape),
                          format_bytes(t.nbytes()), decision_cell(d)}});
    std::string suffix = t.name;
    if (const std::string prefix = title + "."; t.layer >= 0 && suffix.rfind(prefix, 0) == 0) {
      suffix.erase(0, prefix.size());
    }
    g.signature += suffix + "|" + g.rows.back().cells[1] + "|" + g.rows.back().cells[2] + "|" +
                   g.rows.back().cells[4] + ";";
  }

  // Blocks whose rows match an earlier block's are shown once, under the first of them.
  std::map<std::string, std::size_t> first_with_signature;
  std::vector<std::vector<int>> same_as(groups.size());
  std::vector<bool> shown(groups.size(), true);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].layer < 0) continue;
    const auto [it, inserted] = first_with_signature.emplace(groups[g].signature, g);
    if (!inserted) {
      shown[g] = false;
      same_as[it->second].push_back(groups[g].layer);
    }
  }

  const char* headers[5] = {"tensor", "role", "shape", "bytes", "policy"};
  std::size_t width[5];
  for (int c = 0; c < 5; ++c) width[c] = std::strlen(headers[c]);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (!shown[g]) continue;
    for (const Row& r : groups[g].rows) {
      for (int c = 0; c < 5; ++c) width[c] = std::max(width[c], r.cells[c].size());
    }
  }
  auto line = [&](const std::string(&cells)[5]) {
    std::string s = "  ";
    for (int c = 0; c < 5; ++c) {
      s += c == 4 ? cells[c] : pad(cells[c], width[c] + 2);
    }
    return s + "\n";
  };

  int n_layers = 0;
  for (const TensorInfo& t : graph.tensors()) n_layers = std::max(n_layers, t.layer + 1);
  std::ostringstream out;
  out << "plan '" << plan.planner << "': " << saved_count << " saved activations, " << n_layers
      << " blocks, B=" << graph.batch << " T=" << graph.seq << "\n";
  out << line({headers[0], headers[1], headers[2], headers[3], headers[4]});
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (!shown[g]) continue;
    out << groups[g].title;
    if (!same_as[g].empty()) out << " (same in " << layer_ranges(same_as[g]) << ")";
    out << "\n";
    for (const Row& r : groups[g].rows) out << line(r.cells);
  }

  out << "totals\n";
  std::size_t retained = 0, all = 0;
  for (int p = 0; p < 3; ++p) {
    const auto policy = static_cast<Policy>(p);
    retained += totals_bytes[p];
    all += totals_original[p];
    out << "  " << pad(std::string(runtime::policy_name(policy)), 11)
        << pad(std::to_string(totals_count[p]) + (totals_count[p] == 1 ? " tensor" : " tensors"),
               13)
        << format_bytes(totals_bytes[p]) << " retained";
    if (policy == Policy::compress) {
      out << " (" << format_bytes(totals_original[p]) << " before encoding)";
    } else if (policy == Policy::recompute) {
      out << " (" << format_bytes(totals_original[p]) << " rebuilt in the backward)";
    }
    out << "\n";
  }
  out << "  retained between forward and backward: " << format_bytes(retained) << " of "
      << format_bytes(all) << " saved\n";
  return out.str();
}

}  // namespace adacc::plan
