// The MILP planner's solve time and proven gap on gpt2-shaped step graphs (C=768, H=12,
// B=4, T=256) at 12, 48, 96 and 192 layers, at budgets of 50% and 25% of `none`'s step
// peak (policy.h's percentages), with synthetic costs from the ops' flops (100 GFLOP/s)
// and bytes (10 GB/s for elementwise ops, 5 GB/s for every codec's encode and decode).
//
//   build/release/bench/milp_solve_bench [layers...] [--threads N] [--naive] [--log]
//                                        [--whole | --blocks] [--chain N]
//
// plan_milp as the product calls it (from 13 blocks: the block planner, block_planner.h);
// --whole: always one model of the whole step (max_chain_blocks N, default 2); --blocks:
// always the block planner.
//
// Prints a markdown table: the method, model size (of the whole step's model, or of the
// block planner's end-block model), solver seconds (loading into CBC and solving, wall; all
// of the block planner's solves),
// plan_milp's whole wall time (the model's construction, the baselines priced for the
// start, the memory model's check), the proven gap (of the predicted step time, and of
// the time over `none`), predicted time over `none`, and the memory model's peak
// against the budget.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/ops/workspace.h"
#include "adacc/plan/baselines.h"
#include "adacc/plan/block_planner.h"
#include "adacc/plan/cost_model.h"
#include "adacc/plan/milp_planner.h"
#include "adacc/plan/policy.h"
#include "adacc/runtime/memory_model.h"

namespace {

using namespace adacc;

plan::StepCosts synthetic_costs(const model::StepGraph& g) {
  plan::StepCosts c;
  for (const auto& op : g.ops()) {
    double out_bytes = 0;
    for (model::TensorId t : op->outputs()) out_bytes += static_cast<double>(g.tensor(t).nbytes());
    c.forward_seconds.push_back(std::max(op->forward_flops() / 1e11, out_bytes / 1e10));
    c.backward_seconds.push_back(std::max(op->backward_flops() / 1e11, 2 * out_bytes / 1e10));
  }
  const std::vector<bool> saved = runtime::saved_tensors(g);
  c.codecs.resize(g.tensors().size());
  for (std::size_t t = 0; t < g.tensors().size(); ++t) {
    const model::TensorInfo& info = g.tensors()[t];
    if (info.kind != model::TensorKind::activation || !saved[t] || info.dtype != DType::f32 ||
        !runtime::is_recomputable(g, static_cast<model::TensorId>(t))) {
      continue;
    }
    for (const std::string& name : compress::codec_names()) {
      const compress::Codec& codec = compress::codec_by_name(name);
      if (!codec.applies_to(info.role)) continue;
      plan::CodecCost cc;
      cc.codec = name;
      cc.encoded_bytes = codec.encoded_bytes(info.shape);
      cc.encode_seconds = static_cast<double>(info.nbytes()) / 5e9;
      cc.decode_seconds = static_cast<double>(info.nbytes()) / 5e9;
      c.codecs[t].push_back(cc);
    }
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> layers;
  int threads = 1, log = 0, chain = 2;
  bool blocks = false, whole = false;
  ops::AttentionKind attention = ops::AttentionKind::flash;
  for (int a = 1; a < argc; ++a) {
    if (std::strcmp(argv[a], "--threads") == 0 && a + 1 < argc) {
      threads = std::stoi(argv[++a]);
    } else if (std::strcmp(argv[a], "--blocks") == 0) {
      blocks = true;
    } else if (std::strcmp(argv[a], "--whole") == 0) {
      whole = true;
    } else if (std::strcmp(argv[a], "--chain") == 0 && a + 1 < argc) {
      chain = std::stoi(argv[++a]);
    } else if (std::strcmp(argv[a], "--log") == 0) {
      log = 1;
    } else if (std::strcmp(argv[a], "--naive") == 0) {
      attention = ops::AttentionKind::naive;
    } else {
      layers.push_back(std::stoi(argv[a]));
    }
  }
  if (layers.empty()) layers = {12, 48, 96, 192};
  std::printf(
      "| L | budget | method | columns | rows | solve s | plan_milp s | gap | overhead gap | "
      "optimal "
      "| time over none | peak / budget |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const int L : layers) {
    model::ModelConfig cfg =
        model::parse_config("L=" + std::to_string(L) + ",C=768,H=12,V=50257,T=256");
    cfg.attention = attention;
    const model::StepGraph g = model::build_gpt2_graph(cfg, 4, 256);
    const plan::StepCosts costs = synthetic_costs(g);
    plan::MilpOptions o;
    o.threads = threads;
    o.log_level = log;
    o.max_chain_blocks = chain;
    o.by_blocks = !whole;
    o.fixed = runtime::training_fixed_bytes(cfg, 4, 256);
    const runtime::MemoryPrediction none =
        runtime::predict_step_memory(g, plan::none_plan(g), threads, o.fixed);
    for (const double share : {0.5, 0.25}) {
      plan::Budget b;
      b.percent = true;
      b.share = share;
      o.budget = plan::resolve_budget(b, none);
      std::printf("| %d | %.0f%% | ", L, 100 * share);
      try {
        const auto start = std::chrono::steady_clock::now();
        const plan::MilpResult r =
            blocks ? plan::plan_by_blocks(g, costs, o) : plan::plan_milp(g, costs, o);
        const double total =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%s | %zu | %zu | %.3f | %.3f | %.2e | %.2e | %s | %.2f%% | %.3f |\n",
                    r.method.c_str(), r.columns, r.rows, r.solve_seconds, total, r.gap,
                    r.overhead_gap, r.proven_optimal ? "yes" : "no",
                    100 * (r.predicted_seconds / costs.keep_all_seconds() - 1),
                    static_cast<double>(r.memory.total_peak) / static_cast<double>(o.budget));
      } catch (const PlanInfeasible& e) {
        std::printf("infeasible | | | | | | | | | %s |\n", e.what());
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
