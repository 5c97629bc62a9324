// Plan files and the plan table: JSON round trips of every baseline (and a compressing
// plan), what the JSON lists, hand-written plans, every reading error with its message,
// files on disk, and the table's rows, collapsed blocks and totals.
#include "adacc/plan/plan_io.h"

#include <gtest/gtest.h>

#include "reference/test_util.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "support/small_graph.h"
#include "support/temp_dir.h"

namespace adacc::plan {
namespace {

using runtime::Decision;
using runtime::Plan;
using runtime::Policy;

using test::expect_error;

void expect_same_plan(const Plan& a, const Plan& b) {
  EXPECT_EQ(a.planner, b.planner);
  ASSERT_EQ(a.decisions.size(), b.decisions.size());
  for (std::size_t i = 0; i < a.decisions.size(); ++i) {
    EXPECT_EQ(a.decisions[i].policy, b.decisions[i].policy) << i;
    EXPECT_EQ(a.decisions[i].codec, b.decisions[i].codec) << i;
  }
}

const char* const kBaselines[] = {"none", "full", "selective", "llmc", "every-2", "every-3"};

class PlanIoTest : public test::SmallGraph {};

TEST_P(PlanIoTest, EveryBaselineRoundTrips) {
  for (const char* name : kBaselines) {
    const Plan plan = baseline_plan(graph_, name);
    const std::string json = to_json(plan, graph_);
    expect_same_plan(from_json(graph_, json), plan);
    EXPECT_EQ(to_json(from_json(graph_, json), graph_), json) << name;
  }
}

TEST_P(PlanIoTest, JsonListsOnlyTheDifferencesFromKeepAll) {
  const nlohmann::json none = nlohmann::json::parse(to_json(none_plan(graph_), graph_));
  EXPECT_EQ(none["planner"], "none");
  EXPECT_TRUE(none["tensors"].is_object());
  EXPECT_TRUE(none["tensors"].empty());

  const Plan full = full_plan(graph_);
  const nlohmann::json j = nlohmann::json::parse(to_json(full, graph_));
  EXPECT_EQ(j["planner"], "full");
  std::size_t recomputed_saved = 0;
  for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
    const auto id = static_cast<model::TensorId>(i);
    if (runtime::is_saved(graph_, id) && full.decisions[i].policy == Policy::recompute) {
      ++recomputed_saved;
      EXPECT_EQ(j["tensors"][graph_.tensor(id).name], "recompute");
    }
  }
  EXPECT_EQ(j["tensors"].size(), recomputed_saved);
  EXPECT_EQ(j["tensors"]["h1.gelu.out"], "recompute");
  EXPECT_FALSE(j["tensors"].contains("h1.res2.out"));
  EXPECT_FALSE(j["tensors"].contains("h1.attn_proj.out"));  // recompute in keep_all too

  Plan mixed = llmc_plan(graph_);
  at(mixed, "h0.fc.out") = Decision{Policy::compress, "bf16"};
  at(mixed, "h1.attn_proj.out").policy = Policy::keep;  // differs from keep_all: listed
  const nlohmann::json m = nlohmann::json::parse(to_json(mixed, graph_));
  EXPECT_EQ(m["tensors"]["h0.fc.out"], nlohmann::json({{"compress", "bf16"}}));
  EXPECT_EQ(m["tensors"]["h1.attn_proj.out"], "keep");
  EXPECT_EQ(m["tensors"]["h2.ln2.out"], "recompute");
  expect_same_plan(from_json(graph_, to_json(mixed, graph_)), mixed);
}

TEST_P(PlanIoTest, HandWrittenPlans) {
  const Plan plan = from_json(graph_, R"({"planner": "hand", "tensors": {
      "h0.fc.out": "recompute", "h0.gelu.out": {"compress": "bf16"}, "h2.qkv.out": "keep"}})");
  EXPECT_EQ(plan.planner, "hand");
  Plan want = runtime::keep_all_plan(graph_);
  want.planner = "hand";
  at(want, "h0.fc.out").policy = Policy::recompute;
  at(want, "h0.gelu.out") = Decision{Policy::compress, "bf16"};
  expect_same_plan(plan, want);

  // No planner: "custom"; no tensors: keep_all.
  expect_same_plan(from_json(graph_, R"({"tensors": {}})"), [&] {
    Plan p = runtime::keep_all_plan(graph_);
    p.planner = "custom";
    return p;
  }());
  EXPECT_EQ(from_json(graph_, R"({"planner": "x"})").planner, "x");
}

TEST_P(PlanIoTest, APlanReadsBackForAnotherBatchShape) {
  const std::string json = to_json(full_plan(graph_), graph_);
  const model::StepGraph other = model_.build_graph(1, 4);
  expect_same_plan(from_json(other, json), full_plan(other));
}

TEST_P(PlanIoTest, ReadingErrorsNameTheEntry) {
  expect_error<InvalidArgument>([&] { from_json(graph_, R"({"tensors": {)"); },
                                {"[plan]", "not valid JSON"});
  expect_error<InvalidArgument>([&] { from_json(graph_, ""); }, {"not valid JSON"});
  expect_error<InvalidArgument>([&] { from_json(graph_, "[1, 2]"); }, {"JSON object"});
  expect_error<InvalidArgument>([&] { from_json(graph_, R"({"tensors": ["h0.fc.out"]})"); },
                                {"\"tensors\" must be an object"});
  expect_error<InvalidArgument>([&] { from_json(graph_, R"({"planner": 3})"); },
                                {"\"planner\"", "string"});
  expect_error<InvalidArgument>([&] { from_json(graph_, R"({"tensor": {}})"); },
                                {"unknown key \"tensor\""});
  expect_error<InvalidArgument>(
      [&] { from_json(graph_, R"({"tensors": {"h9.fc.out": "recompute"}})"); },
      {"'h9.fc.out'", "no tensor"});
  expect_error<InvalidArgument>([&] { from_json(graph_, R"({"tensors": {"h0.fc.out": "drop"}})"); },
                                {"'h0.fc.out'", "\"drop\"", "recompute"});
  expect_error<InvalidArgument>(
      [&] { from_json(graph_, R"({"tensors": {"h0.fc.out": "compress"}})"); },
      {"'h0.fc.out'", "codec"});
  expect_error<InvalidArgument>(
      [&] { from_json(graph_, R"({"tensors": {"h0.fc.out": {"compress": 3}}})"); },
      {"'h0.fc.out'"});
  expect_error<InvalidArgument>(
      [&] { from_json(graph_, R"({"tensors": {"h0.fc.out": {"compres": "bf16"}}})"); },
      {"'h0.fc.out'"});
  expect_error<InvalidArgument>([&] { from_json(graph_, R"({"tensors": {"h0.fc.out": 1}})"); },
                                {"'h0.fc.out'"});
  expect_error<InvalidArgument>(
      [&] { from_json(graph_, R"({"tensors": {"h0.fc.out": {"compress": "int3"}}})"); },
      {"'h0.fc.out'", "'int3'"});
  expect_error<InvalidArgument>(
      [&] { from_json(graph_, R"({"tensors": {"transformer.wte.weight": "recompute"}})"); },
      {"'transformer.wte.weight'", "parameter"});
  expect_error<InvalidArgument>(
      [&] { from_json(graph_, R"({"tensors": {"loss.grad": "recompute"}})"); },
      {"'loss.grad'", "cannot be recomputed"});
}

TEST_P(PlanIoTest, Files) {
  const test::TempDir dir("plan_io_test");
  const std::string path = (dir / "plan.json").string();

  Plan plan = every_k_plan(graph_, 2);
  at(plan, "h2.gelu.out") = Decision{Policy::compress, "bf16"};
  save_plan_file(plan, graph_, path);
  expect_same_plan(load_plan_file(graph_, path), plan);
  save_plan_file(none_plan(graph_), graph_, path);  // replaces
  expect_same_plan(load_plan_file(graph_, path), none_plan(graph_));

  const std::string missing = (dir / "missing.json").string();
  expect_error<InvalidArgument>([&] { load_plan_file(graph_, missing); },
                                {"'" + missing + "'", "cannot read"});
  const std::string unwritable = (dir / "no_such_dir" / "plan.json").string();
  expect_error<InvalidArgument>([&] { save_plan_file(plan, graph_, unwritable); },
                                {"'" + unwritable + "'", "cannot write"});

  const std::string bad = (dir / "bad.json").string();
  std::ofstream(bad) << R"({"tensors": {"h0.fc.out": "drop"}})";
  expect_error<InvalidArgument>([&] { load_plan_file(graph_, bad); },
                                {"'" + bad + "'", "'h0.fc.out'", "\"drop\""});
}

TEST_P(PlanIoTest, TableShowsLayerZeroAndTotals) {
  for (const char* name : kBaselines) {
    const Plan plan = baseline_plan(graph_, name);
    const std::string table = format_plan_table(graph_, plan);
    std::size_t kept = 0, recomputed = 0;
    for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
      const model::TensorInfo& t = graph_.tensors()[i];
      const auto id = static_cast<model::TensorId>(i);
      if (t.kind != model::TensorKind::activation || !runtime::is_saved(graph_, id)) continue;
      (plan.decisions[i].policy == Policy::keep ? kept : recomputed) += t.nbytes();
      if (t.layer == 0 || t.name == "embed.out") {
        EXPECT_NE(table.find(t.name), std::string::npos) << name << ": " << t.name << "\n" << table;
      }
    }
    EXPECT_NE(table.find("plan '" + std::string(name) + "'"), std::string::npos) << table;
    EXPECT_NE(table.find("loss.grad"), std::string::npos) << table;
    EXPECT_NE(table.find(format_bytes(kept) + " retained"), std::string::npos) << table;
    EXPECT_NE(table.find(format_bytes(recomputed) + " rebuilt"), std::string::npos) << table;
    EXPECT_NE(table.find("retained between forward and backward: " + format_bytes(kept) + " of " +
                         format_bytes(kept + recomputed)),
              std::string::npos)
        << table;
  }
}

TEST_P(PlanIoTest, TableCollapsesIdenticalBlocks) {
  const std::string none = format_plan_table(graph_, none_plan(graph_));
  EXPECT_NE(none.find("h0 (same in h1..h2)"), std::string::npos) << none;
  EXPECT_EQ(none.find("h1.ln1.out"), std::string::npos) << none;
  EXPECT_NE(none.find("h0.ln1.out  "), std::string::npos) << none;

  // every-2: h0's output is recomputed, h1's and h2's are kept.
  const std::string two = format_plan_table(graph_, every_k_plan(graph_, 2));
  EXPECT_NE(two.find("\nh0\n"), std::string::npos) << two;
  EXPECT_NE(two.find("h1 (same in h2)"), std::string::npos) << two;
  EXPECT_EQ(two.find("h2.ln1.out"), std::string::npos) << two;
}

TEST_P(PlanIoTest, TableShowsCodecsAndCompressedBytes) {
  Plan plan = none_plan(graph_);
  at(plan, "h0.gelu.out") = Decision{Policy::compress, "bf16"};
  const std::string table = format_plan_table(graph_, plan);
  const model::TensorInfo& gelu = graph_.tensor(graph_.find("h0.gelu.out"));
  EXPECT_NE(table.find("compress:bf16"), std::string::npos) << table;
  EXPECT_NE(table.find("role"), std::string::npos);
  EXPECT_NE(table.find("gelu_out"), std::string::npos);
  EXPECT_NE(table.find(shape_str(gelu.shape)), std::string::npos);
  // bf16 halves it: (2,8,64) f32 = 4 KiB -> 2 KiB.
  EXPECT_NE(table.find("1 tensor     2.00 KiB retained (4.00 KiB before encoding)"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("\nh0\n"), std::string::npos) << table;
  EXPECT_NE(table.find("h1 (same in h2)"), std::string::npos) << table;
}

// Hostile plan files: one short line for 100,000 levels of nesting (a stack overflow
// before), linear time for 100,000 keys (28 s before), refusal of oversized texts.
std::string reading_error(const model::StepGraph& graph, const std::string& text) {
  return test::error_of<InvalidArgument>([&] { from_json(graph, text); }, 300);
}

TEST_P(PlanIoTest, DeeplyNestedPlansAreRefusedInOneShortLine) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const std::string& text :
       {deep, R"({"planner": )" + deep + "}", R"({"tensors": {"h0.fc.out": )" + deep + "}}"}) {
    EXPECT_NE(reading_error(graph_, text).find("nested deeper than 64"), std::string::npos);
  }
  // Within the depth limit, a wrong value is described, not printed.
  std::string deep_ok = "1";
  for (int i = 0; i < 60; ++i) deep_ok = R"({"compress": )" + deep_ok + "}";
  const std::string msg = reading_error(graph_, R"({"tensors": {"h0.fc.out": )" + deep_ok + "}}");
  EXPECT_NE(msg.find("policy an object of 1 key is not one"), std::string::npos) << msg;
}

TEST_P(PlanIoTest, PlansWithHundredThousandKeysAreReadInLinearTime) {
  std::string text = R"({"planner": "x", "tensors": {)";
  for (int i = 0; i < 100000; ++i) {
    text += (i ? ", " : "") + std::string("\"h") + std::to_string(i) + R"(.fc.out": "keep")";
  }
  text += "}}";
  ASSERT_GT(text.size(), 2000000u);
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = reading_error(graph_, text);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3.0);
  // h0..h2 exist in this graph (L=3); h3 is the first entry of another model.
  EXPECT_NE(msg.find("entry 'h3.fc.out': no tensor of that name"), std::string::npos) << msg;
  // As many keys at the top: the first unknown one is named, in the file's order.
  std::string top = "{";
  for (int i = 0; i < 100000; ++i) top += (i ? ", \"k" : "\"k") + std::to_string(i) + "\": 0";
  top += "}";
  const auto start2 = std::chrono::steady_clock::now();
  EXPECT_NE(reading_error(graph_, top).find("unknown key \"k0\""), std::string::npos);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start2).count(), 3.0);
}

TEST_P(PlanIoTest, OversizedPlansAndDuplicateEntriesAreRefused) {
  const std::string big = R"({"planner": ")" + std::string(kMaxPlanFileBytes, 'x') + R"("})";
  EXPECT_NE(reading_error(graph_, big).find("plan files are limited to 64 MiB"), std::string::npos);
  const std::string twice = R"({"tensors": {"h0.fc.out": "keep", "h0.fc.out": "recompute"}})";
  EXPECT_NE(reading_error(graph_, twice).find("\"h0.fc.out\" twice"), std::string::npos);
  // Found by fuzzing: an unknown codec's name was echoed whole.
  const std::string codec(100000, 'c');
  const std::string msg =
      reading_error(graph_, R"({"tensors": {"h0.fc.out": {"compress": ")" + codec + R"("}}})");
  EXPECT_NE(msg.find("entry 'h0.fc.out': unknown codec 'cccc"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
  // A long unknown name is quoted short.
  const std::string name(100000, 'n');
  EXPECT_NE(
      reading_error(graph_, R"({"tensors": {")" + name + R"(": "keep"}})").find("(100000 bytes)"),
      std::string::npos);
}

TEST_P(PlanIoTest, OversizedPlanFilesAreRefusedUnread) {
  const test::TempDir dir("plan_io_test");
  const std::filesystem::path path = dir / "big.json";
  {
    std::ofstream out(path, std::ios::binary);
    out << "{}";
  }
  std::filesystem::resize_file(path, kMaxPlanFileBytes + 1);  // sparse: no 64 MiB written
  expect_error<InvalidArgument>([&] { load_plan_file(graph_, path.string()); },
                                {path.string(), "67108865 bytes", "limited to 64 MiB"});
}

INSTANTIATE_TEST_SUITE_P(Attention, PlanIoTest, test::kAttentionForms, test::attention_name);

}  // namespace
}  // namespace adacc::plan
