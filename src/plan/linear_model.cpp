// The MILP planner's model container and its AND/OR linearizations (see linear_model.h).
#include "linear_model.h"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <map>
#include <utility>

namespace adacc::plan::detail {

LinExpr& LinExpr::add(const LinExpr& e, double scale) {
  constant += scale * e.constant;
  for (const Term& t : e.terms) terms.push_back({t.col, scale * t.coef});
  return *this;
}

LinExpr LinExpr::negated() const {
  LinExpr r = value(1);
  r.add(*this, -1);
  return r;
}

int LinearModel::add_column(const std::string& name, double lower, double upper, bool integer,
                            double objective) {
  columns_.push_back({model_name(name), lower, upper, integer, objective});
  return static_cast<int>(columns_.size()) - 1;
}

void LinearModel::add_row(const std::string& name, const LinExpr& expr, double lower,
                          double upper) {
  std::map<int, double> merged;
  for (const Term& t : expr.terms) merged[t.col] += t.coef;
  Row row;
  row.name = model_name(name);
  for (const auto& [col, coef] : merged) {
    if (coef != 0) row.terms.push_back({col, coef});
  }
  row.lower = lower - expr.constant;
  row.upper = upper - expr.constant;
  if (row.terms.empty()) {
    if (row.lower <= 0 && row.upper >= 0) return;  // always holds
    // Never holds: kept (the model is infeasible) over a column fixed at 0, since MPS and
    // LP files cannot hold a row without terms.
    if (zero_col_ < 0) zero_col_ = add_column("zero", 0, 0, false);
    row.terms.push_back({zero_col_, 1});
  }
  rows_.push_back(std::move(row));
}

namespace {

// Splits 0/1 inputs into constants and the rest.
struct Split {
  bool any_zero = false, any_one = false;
  std::vector<LinExpr> variable;
};

Split split(const std::vector<LinExpr>& inputs) {
  Split s;
  for (const LinExpr& e : inputs) {
    if (!e.is_constant()) {
      s.variable.push_back(e);
    } else if (e.constant > 0.5) {
      s.any_one = true;
    } else {
      s.any_zero = true;
    }
  }
  return s;
}

}  // namespace

void LinearModel::record(int col, Definition::Kind kind, const std::vector<LinExpr>& inputs) {
  if (definitions_.size() < columns_.size()) definitions_.resize(columns_.size());
  definitions_[static_cast<std::size_t>(col)] = {kind, inputs};
  defined_.push_back(col);
}

void LinearModel::define(int col, const LinExpr& e) {
  record(col, Definition::Kind::sum, {e});
}

std::vector<double> LinearModel::complete(std::vector<double> x) const {
  x.resize(columns_.size(), 0);
  auto value = [&](const LinExpr& e) {
    double v = e.constant;
    for (const Term& t : e.terms) v += t.coef * x[static_cast<std::size_t>(t.col)];
    return v;
  };
  for (const int col : defined_) {
    const auto c = static_cast<std::size_t>(col);
    const Definition& d = definitions_[c];
    switch (d.kind) {
      case Definition::Kind::free:
        break;
      case Definition::Kind::sum:
        x[c] = value(d.inputs.front());
        break;
      case Definition::Kind::all:
        x[c] = std::all_of(d.inputs.begin(), d.inputs.end(),
                           [&](const LinExpr& e) { return value(e) > 0.5; })
                   ? 1
                   : 0;
        break;
      case Definition::Kind::any:
        x[c] = std::any_of(d.inputs.begin(), d.inputs.end(),
                           [&](const LinExpr& e) { return value(e) > 0.5; })
                   ? 1
                   : 0;
        break;
    }
  }
  return x;
}

void LinearModel::constrain_and(int col, const std::vector<LinExpr>& inputs) {
  record(col, Definition::Kind::all, inputs);
  const Split s = split(inputs);
  const std::string& name = columns_[static_cast<std::size_t>(col)].name;
  if (s.any_zero) {
    columns_[static_cast<std::size_t>(col)].upper = 0;
    return;
  }
  // col <= each input; col >= sum(inputs) - (k - 1).
  LinExpr lower = LinExpr::of(col);
  for (std::size_t k = 0; k < s.variable.size(); ++k) {
    LinExpr e = LinExpr::of(col);
    e.add(s.variable[k], -1);
    add_row(name + "_le" + std::to_string(k), e, -kInf, 0);
    lower.add(s.variable[k], -1);
  }
  add_row(name + "_ge", lower, 1 - static_cast<double>(s.variable.size()), kInf);
}

LinExpr LinearModel::and_of(const std::string& name, const std::vector<LinExpr>& inputs) {
  const Split s = split(inputs);
  if (s.any_zero) return LinExpr::value(0);
  if (s.variable.empty()) return LinExpr::value(1);
  if (s.variable.size() == 1) return s.variable.front();
  const int col = add_column(name, 0, 1, false);
  constrain_and(col, s.variable);
  return LinExpr::of(col);
}

LinExpr LinearModel::or_of(const std::string& name, const std::vector<LinExpr>& inputs) {
  const Split s = split(inputs);
  if (s.any_one) return LinExpr::value(1);
  if (s.variable.empty()) return LinExpr::value(0);
  if (s.variable.size() == 1) return s.variable.front();
  const int col = add_column(name, 0, 1, false);
  record(col, Definition::Kind::any, s.variable);
  // col >= each input; col <= sum(inputs).
  LinExpr upper = LinExpr::of(col);
  for (std::size_t k = 0; k < s.variable.size(); ++k) {
    LinExpr e = LinExpr::of(col);
    e.add(s.variable[k], -1);
    add_row(columns_.back().name + "_ge" + std::to_string(k), e, 0, kInf);
    upper.add(s.variable[k], -1);
  }
  add_row(columns_[static_cast<std::size_t>(col)].name + "_le", upper, -kInf, 0);
  return LinExpr::of(col);
}

double LinearModel::activity(const Row& row, const std::vector<double>& x) {
  double a = 0;
  for (const Term& t : row.terms) a += t.coef * x[static_cast<std::size_t>(t.col)];
  return a;
}

std::string model_name(const std::string& text) {
  std::string s = text;
  std::replace_if(
      s.begin(), s.end(),
      [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '_';
      },
      '_');
  return s;
}

}  // namespace adacc::plan::detail
