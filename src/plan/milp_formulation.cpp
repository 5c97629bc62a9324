// The step as a MILP (see milp_formulation.h), following step_schedule.h:
//
// Forward: at each op, its outputs and workspace; then each tensor at its last forward
// use is kept, encoded (the encoded form and the value both held while encoding) or
// freed. The level after each op is linear in the decisions.
//
// Backward stage o: the executor makes op o's saved tensors available depth first
// (decode if encoded, else re-run the producer after making its inputs available). The
// formulation walks the same depth-first order over everything that could be missing and
// gives each visit and each possible re-run exact 0/1 indicators (AND/OR of the
// decisions and of earlier stages' presence): N (needed), Pre (present when visited:
// present at the stage's start, or made by a sibling's re-run earlier in the stage), D
// (decoded), M (re-run here, triggered by this tensor). A re-run allocates all its
// outputs (scratch for those present) and its workspace; the level only rises until the
// stage's rebuilds are done, then rebuilt tensors whose backward is over (or that no
// backward op saves) are freed, the backward runs with its gradients and workspace
// (plan-independent), and tensors at their last backward use are freed. Presence W of a
// saved tensor carries to the next stage; every indicator is fixed by its inputs, so
// with the decisions fixed the memory rows are the memory model's points.
#include "milp_formulation.h"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/ops/workspace.h"

namespace adacc::plan::detail {

namespace {

using model::TensorId;

class Builder {
 public:
  Builder(const model::StepGraph& graph, const StepCosts& costs, const MilpOptions& options)
      : g_(graph),
        costs_(costs),
        options_(options),
        life_(model::analyze_lifetimes(graph)),
        saved_(runtime::saved_tensors(graph)),
        n_t_(graph.tensors().size()),
        keep_(n_t_),
        compressed_(n_t_),
        encoded_(n_t_),
        derived_(n_t_),
        pres_(n_t_),
        alive_(n_t_, 0),
        recompute_col_(n_t_, -1),
        reruns_of_(graph.ops().size()) {
    // Blocks: the ops' layers, with the ops outside the blocks folded into the adjacent
    // block (before the first: block of the first; after: the last block seen).
    int seen = -1;
    for (const auto& op : graph.ops()) {
      if (op->layer() >= 0) seen = op->layer();
      block_.push_back(seen);
    }
    int lowest = seen;
    for (int b : block_) {
      if (b >= 0) lowest = std::min(lowest, b);
    }
    for (int& b : block_) b = std::max(b, lowest);
  }

  Formulation build() {
    decisions();
    const LinExpr end_of_forward = forward();
    backward(end_of_forward);
    return std::move(f_);
  }

 private:
  std::size_t i(TensorId id) const { return static_cast<std::size_t>(id); }
  double bytes(TensorId id) const {
    return static_cast<double>(ops::accounted_bytes(g_.tensor(id).nbytes()));
  }
  bool activation(TensorId id) const { return g_.tensor(id).kind == model::TensorKind::activation; }
  bool decided(TensorId id) const { return activation(id) && saved_[i(id)]; }
  const std::string& tname(TensorId id) const { return g_.tensor(id).name; }
  const std::string& oname(int o) const { return g_.op(o).name(); }
  LinearModel& m() { return f_.model; }

  // A continuous column equal to the bytes `e` in MiB (bounds the size of the rows that
  // use it; MiB keep its row's coefficients near 1 for the LP, exactly: a power of two).
  LinExpr level(const std::string& name, const LinExpr& e) {
    if (e.terms.size() <= 1) return e;
    constexpr double kMiB = 1024.0 * 1024.0;
    const int col = m().add_column(name, 0, kInf, false);  // bytes held: never negative
    LinExpr mib;
    mib.add(e, 1 / kMiB);
    LinExpr eq = LinExpr::of(col);
    eq.add(mib, -1);
    m().add_row(name + "_def", eq, 0, 0);
    m().define(col, mib);
    return LinExpr::of(col, kMiB);
  }
  void point(std::string name, int op, const LinExpr& e, double constant = 0) {
    LinExpr b = e;
    b.constant += constant;
    f_.memory.push_back({std::move(name), std::move(b), op});
  }

  // Decision columns, one group per saved activation.
  void decisions() {
    f_.choices.resize(n_t_);
    f_.held.resize(n_t_);
    std::vector<bool> value_read(n_t_, false);  // saved by an op that needs the value
    for (const auto& op : g_.ops()) {
      if (op->kind() == "gelu") continue;
      for (TensorId s : op->saved()) value_read[i(s)] = true;
    }
    for (std::size_t k = 0; k < n_t_; ++k) {
      const auto id = static_cast<TensorId>(k);
      if (!decided(id)) continue;
      const model::TensorInfo& t = g_.tensor(id);
      std::vector<Choice>& group = f_.choices[k];
      LinExpr one;
      const int keep = m().add_column(t.name + "__keep", 0, 1, true);
      group.push_back({keep, {runtime::Policy::keep, {}}});
      keep_[k] = LinExpr::of(keep);
      if (options_.codecs && t.dtype == DType::f32 && k < costs_.codecs.size()) {
        for (const CodecCost& cc : costs_.codecs[k]) {
          const compress::Codec& codec = compress::codec_by_name(cc.codec);
          if (!codec.applies_to(t.role) || cc.grad_error > options_.tolerance) continue;
          const bool derived = codec.decodes_to() != model::SavedForm::value;
          if (derived && value_read[k]) continue;
          const int col = m().add_column(t.name + "__" + cc.codec, 0, 1, true);
          group.push_back({col, {runtime::Policy::compress, cc.codec}});
          compressed_[k].add_col(col, 1);
          const double enc =
              static_cast<double>(ops::accounted_bytes(codec.encoded_bytes(t.shape)));
          encoded_[k].add_col(col, enc);
          f_.seconds.add_col(col, cc.encode_seconds + cc.decode_seconds);
          f_.encoded_bytes.add_col(col, enc);
          if (derived) derived_[k].push_back(col);
        }
      }
      if (runtime::is_recomputable(g_, id)) {
        const int col = m().add_column(t.name + "__recompute", 0, 1, true);
        group.push_back({col, {runtime::Policy::recompute, {}}});
        recompute_col_[k] = col;
      }
      f_.held[k] = keep_[k];
      f_.held[k].terms.front().coef = bytes(id);
      f_.held[k].add(encoded_[k]);
      for (const Choice& c : group) one.add_col(c.col, 1);
      m().add_row(t.name + "__choice", one, 1, 1);
    }
  }

  // The forward's points; returns the level at its end (kept values and encoded forms).
  LinExpr forward() {
    LinExpr level_now;
    std::vector<char> present(n_t_, 0);
    for (int o = 0; o < static_cast<int>(g_.ops().size()); ++o) {
      const model::OpNode& op = g_.op(o);
      double outs = 0;
      for (TensorId out : op.outputs()) {
        if (op.produces(out, model::Pass::train) && !present[i(out)]) {
          outs += bytes(out);
          present[i(out)] = 1;
        }
      }
      point("mem_fwd_" + oname(o), o, level_now,
            outs + static_cast<double>(op.forward_workspace(model::Pass::train, options_.threads)));
      level_now.constant += outs;
      auto release = [&](TensorId id) {
        if (!activation(id) || !present[i(id)] || life_[i(id)].last_forward_use != o) return;
        present[i(id)] = 0;
        if (life_[i(id)].first_backward_use < 0) {
          level_now.constant -= bytes(id);
          return;
        }
        if (!compressed_[i(id)].is_constant()) {
          LinExpr e = level_now;
          e.add(encoded_[i(id)]);
          point("mem_fwd_" + oname(o) + "_encoding_" + tname(id), o, e);
        }
        // value stays if kept; the encoded form comes if compressed.
        level_now.constant -= bytes(id);
        level_now.add(keep_[i(id)], bytes(id));
        level_now.add(encoded_[i(id)]);
      };
      for (TensorId id : op.inputs()) release(id);
      for (TensorId id : op.outputs()) release(id);
      level_now = level("lvl_fwd_" + oname(o), level_now);
    }
    return level_now;
  }

  struct Event {
    bool run = false;
    TensorId x = model::kNoTensor;  // visited tensor / the re-run's trigger
    int q = -1;                     // re-run op
    int m_col = -1;                 // its indicator column (run events)
  };

  // The executor's depth-first order at stage o if everything were missing.
  // Re-runs reach back at most options_.max_chain_blocks blocks (milp_planner.h).
  std::vector<Event> stage_events(int o) const {
    const int reach = options_.max_chain_blocks > 0
                          ? block_[static_cast<std::size_t>(o)] - options_.max_chain_blocks + 1
                          : std::numeric_limits<int>::min();
    std::vector<Event> events;
    std::vector<char> visited(n_t_, 0);
    std::function<void(TensorId)> visit = [&](TensorId x) {
      if (!activation(x) || visited[i(x)]) return;
      visited[i(x)] = 1;
      events.push_back({false, x, -1, -1});
      if (!runtime::is_recomputable(g_, x)) return;
      const int q = g_.tensor(x).producer;
      if (block_[static_cast<std::size_t>(q)] < reach) return;  // must be there
      for (TensorId in : g_.op(q).inputs()) visit(in);
      events.push_back({true, x, q, -1});
    };
    for (TensorId s : g_.op(o).saved()) visit(s);
    return events;
  }

  void backward(LinExpr level_now) {
    const int n_ops = static_cast<int>(g_.ops().size());
    // Gradients: plan-independent, at the start of each stage and while its backward runs.
    std::vector<double> grads_start(static_cast<std::size_t>(n_ops)),
        grads_run(static_cast<std::size_t>(n_ops));
    {
      std::vector<char> has(n_t_, 0);
      double g = 0;
      for (int o = n_ops - 1; o >= 0; --o) {
        const model::OpNode& op = g_.op(o);
        grads_start[static_cast<std::size_t>(o)] = g;
        auto touch = [&](TensorId id) {
          if (has[i(id)]) return;
          has[i(id)] = 1;
          g += bytes(id);
        };
        for (TensorId in : op.inputs()) {
          if (activation(in)) touch(in);
        }
        if (op.kind() != "lm_head_loss") touch(op.outputs().front());
        grads_run[static_cast<std::size_t>(o)] =
            g + static_cast<double>(op.backward_workspace(options_.threads));
        for (TensorId out : op.outputs()) {
          if (has[i(out)]) {
            has[i(out)] = 0;
            g -= bytes(out);
          }
        }
      }
    }
    for (std::size_t k = 0; k < n_t_; ++k) {
      if (decided(static_cast<TensorId>(k))) {
        alive_[k] = 1;
        pres_[k] = keep_[k];
      }
    }
    for (int o = n_ops - 1; o >= 0; --o) {
      level_now = stage(o, level_now, grads_start[static_cast<std::size_t>(o)],
                        grads_run[static_cast<std::size_t>(o)]);
      rebuilt_by_first_use(o);
    }
  }

  // A valid inequality, implied by the rows for 0/1 decisions, that tightens the LP
  // relaxation: a recomputed tensor is not there when the backward starts and nothing but
  // a re-run of its producer makes it present, so by the end of the first stage that
  // saves it its producer has run at least once. (Without it the AND rows let a fractional
  // solution re-run almost nothing, and the relaxation ignores the time of recomputation:
  // gaps of several percent that CBC could not close.)
  void rebuilt_by_first_use(int o) {
    for (TensorId x : g_.op(o).saved()) {
      const int r = recompute_col_[i(x)];
      if (r < 0 || life_[i(x)].first_backward_use != o) continue;
      LinExpr e = LinExpr::of(r);
      for (int c : reruns_of_[static_cast<std::size_t>(g_.tensor(x).producer)]) e.add_col(c, -1);
      m().add_row("rebuilt_by_" + oname(o) + "_" + tname(x), e, -kInf, 0);
      recompute_col_[i(x)] = -1;  // one row per tensor
    }
  }

  LinExpr stage(int o, LinExpr level_now, double grads_start, double grads_run) {
    const std::string st = "st_" + oname(o) + "__";
    std::vector<Event> events = stage_events(o);
    const model::OpNode& op = g_.op(o);
    std::vector<char> root(n_t_, 0);
    for (TensorId s : op.saved()) root[i(s)] = 1;

    // Re-run indicators, and for each tensor the re-runs that read it.
    std::map<TensorId, std::vector<LinExpr>> readers;
    std::map<int, LinExpr> reruns;  // R: op -> sum of its indicators (exclusive)
    for (Event& e : events) {
      if (!e.run) continue;
      e.m_col = m().add_column(st + "rerun_" + oname(e.q) + "_for_" + tname(e.x), 0, 1, false);
      reruns_of_[static_cast<std::size_t>(e.q)].push_back(e.m_col);
      f_.seconds.add_col(e.m_col, costs_.forward_seconds[static_cast<std::size_t>(e.q)]);
      reruns[e.q].add_col(e.m_col, 1);
      for (TensorId in : g_.op(e.q).inputs()) {
        if (activation(in)) readers[in].push_back(LinExpr::of(e.m_col));
      }
      for (TensorId in : g_.op(e.q).inputs()) {
        for (int col : derived_[i(in)]) {  // a stored derivative cannot be re-run from
          LinExpr r = LinExpr::of(col);
          r.add_col(e.m_col, 1);
          m().add_row(st + "derived_" + m().columns()[static_cast<std::size_t>(col)].name + "_" +
                          oname(e.q) + "_" + tname(e.x),
                      r, -kInf, 1);
        }
      }
    }
    auto start_presence = [&](TensorId x) {
      return decided(x) && alive_[i(x)] ? pres_[i(x)] : LinExpr::value(0);
    };
    std::map<TensorId, LinExpr> decoded;
    std::map<int, std::vector<LinExpr>> ran_so_far;
    std::map<TensorId, int> m_of;
    for (const Event& e : events) {
      if (e.run) m_of[e.x] = e.m_col;
    }
    for (const Event& e : events) {
      const TensorId x = e.x;
      if (!e.run) {
        const LinExpr need =
            root[i(x)] ? LinExpr::value(1) : m().or_of(st + "need_" + tname(x), readers[x]);
        std::vector<LinExpr> pre_in{start_presence(x)};
        const int producer = g_.tensor(x).producer;
        if (producer >= 0) {
          for (const LinExpr& r : ran_so_far[producer]) pre_in.push_back(r);
        }
        const LinExpr pre = m().or_of(st + "had_" + tname(x), pre_in);
        const LinExpr avail = decided(x) && alive_[i(x)] ? compressed_[i(x)] : LinExpr::value(0);
        if (!avail.is_constant() || avail.constant > 0.5) {
          const LinExpr d = m().and_of(st + "decode_" + tname(x), {need, pre.negated(), avail});
          decoded[x] = d;
          level_now.add(d, bytes(x));
        }
        if (m_of.count(x) != 0) {
          m().constrain_and(m_of[x], {need, pre.negated(), avail.negated()});
        } else {  // cannot be rebuilt: it must be there
          LinExpr r = need;
          r.add(pre, -1);
          r.add(avail, -1);
          m().add_row(st + "available_" + tname(x), r, -kInf, 0);
        }
        continue;
      }
      const model::OpNode& q = g_.op(e.q);
      const LinExpr mx = LinExpr::of(e.m_col);
      double all_outs =
          static_cast<double>(q.forward_workspace(model::Pass::train, options_.threads));
      for (TensorId z : q.outputs()) {
        if (q.produces(z, model::Pass::train)) all_outs += bytes(z);
      }
      {
        LinExpr p = level_now;
        p.add(mx, all_outs);
        point("mem_" + st + "rerun_" + q.name() + "_for_" + tname(x), o, p, grads_start);
      }
      for (TensorId z : q.outputs()) {
        if (!q.produces(z, model::Pass::train)) continue;
        if (z == x) {
          level_now.add(mx, bytes(z));
          continue;
        }
        const LinExpr dz = decoded.count(z) != 0 ? decoded[z] : LinExpr::value(0);
        const LinExpr made = m().and_of(st + "new_" + tname(z) + "_for_" + tname(x),
                                        {mx, start_presence(z).negated(), dz.negated()});
        level_now.add(made, bytes(z));
      }
      ran_so_far[e.q].push_back(mx);
    }
    point("mem_" + st + "ready", o, level_now, grads_start);

    // Presence after the rebuilds; rebuilt tensors no later stage keeps are freed.
    std::vector<char> touched(n_t_, 0);
    std::vector<TensorId> order;
    auto touch = [&](TensorId z) {
      if (activation(z) && !touched[i(z)]) {
        touched[i(z)] = 1;
        order.push_back(z);
      }
    };
    for (const Event& e : events) {
      touch(e.x);
      if (e.run) {
        for (TensorId z : g_.op(e.q).outputs()) touch(z);
      }
    }
    for (TensorId z : order) {
      const int producer = g_.tensor(z).producer;
      const LinExpr rebuilt =
          producer >= 0 && reruns.count(producer) != 0 ? reruns[producer] : LinExpr::value(0);
      if (decided(z) && alive_[i(z)]) {
        std::vector<LinExpr> in{pres_[i(z)], rebuilt};
        if (decoded.count(z) != 0) in.push_back(decoded[z]);
        pres_[i(z)] = m().or_of(st + "has_" + tname(z), in);
      } else {
        level_now.add(rebuilt, -bytes(z));
      }
    }
    point("mem_" + st + "backward", o, level_now, grads_run);
    std::vector<char> freed(n_t_, 0);
    for (TensorId s : op.saved()) {
      if (!decided(s) || freed[i(s)] || life_[i(s)].last_backward_use != o) continue;
      freed[i(s)] = 1;
      level_now.constant -= bytes(s);
      level_now.add(encoded_[i(s)], -1);
      alive_[i(s)] = 0;
      pres_[i(s)] = LinExpr::value(0);
    }
    return level("lvl_" + st + "done", level_now);
  }

  const model::StepGraph& g_;
  const StepCosts& costs_;
  const MilpOptions& options_;
  std::vector<model::TensorLifetime> life_;
  std::vector<bool> saved_;
  std::size_t n_t_;
  Formulation f_;
  std::vector<LinExpr> keep_, compressed_, encoded_;  // per tensor: 0/1, 0/1, bytes
  std::vector<std::vector<int>> derived_;             // codec columns storing a derived form
  std::vector<LinExpr> pres_;                         // presence at the current stage's start
  std::vector<char> alive_;                           // before its last backward use
  std::vector<int> block_;                            // per op: its block (see stage_events)
  std::vector<int> recompute_col_;                    // per tensor: its recompute column, or -1
  std::vector<std::vector<int>> reruns_of_;           // per op: its re-run columns so far
};

}  // namespace

Formulation formulate(const model::StepGraph& graph, const StepCosts& costs,
                      const MilpOptions& options) {
  const std::size_t n_ops = graph.ops().size();
  if (costs.forward_seconds.size() != n_ops || costs.backward_seconds.size() != n_ops) {
    throw InvalidArgument("[plan] the step costs have " +
                          std::to_string(costs.forward_seconds.size()) +
                          " forward op times but the graph has " + std::to_string(n_ops) +
                          " ops; profile this model shape");
  }
  return Builder(graph, costs, options).build();
}

}  // namespace adacc::plan::detail
