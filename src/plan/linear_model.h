// A mixed-integer linear model as the MILP planner builds it: named columns and rows,
// linear expressions over columns, and the exact linearizations of AND and OR over 0/1
// expressions (their results are continuous columns that take 0 or 1 whenever their
// inputs do). The planner loads it into CBC and writes it as MPS or LP from here, so the
// exported model is the solved one.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace adacc::plan::detail {

inline constexpr double kInf = std::numeric_limits<double>::infinity();

struct Term {
  int col = 0;
  double coef = 0;
};

// constant + sum of coef * column.
struct LinExpr {
  double constant = 0;
  std::vector<Term> terms;

  static LinExpr of(int col, double coef = 1) { return {0, {{col, coef}}}; }
  static LinExpr value(double c) { return {c, {}}; }
  bool is_constant() const { return terms.empty(); }
  LinExpr& add(const LinExpr& e, double scale = 1);
  LinExpr& add_col(int col, double coef) {
    terms.push_back({col, coef});
    return *this;
  }
  // 1 - e.
  LinExpr negated() const;
};

struct Column {
  std::string name;
  double lower = 0, upper = 1;
  bool integer = false;
  double objective = 0;
};

struct Row {
  std::string name;
  std::vector<Term> terms;  // merged: one term per column
  double lower = -kInf, upper = kInf;
};

class LinearModel {
 public:
  int add_column(const std::string& name, double lower, double upper, bool integer,
                 double objective = 0);
  // lower <= expr <= upper (the expression's constant moves into the bounds).
  void add_row(const std::string& name, const LinExpr& expr, double lower, double upper);

  // A column equal to the AND / OR of 0/1 expressions (a constant when that follows from
  // constant inputs; the input itself for one non-constant input).
  LinExpr and_of(const std::string& name, const std::vector<LinExpr>& inputs);
  LinExpr or_of(const std::string& name, const std::vector<LinExpr>& inputs);
  // Rows that make the existing column `col` the AND of `inputs` (0 if a constant is 0).
  void constrain_and(int col, const std::vector<LinExpr>& inputs);
  // Records that the rows make column `col` equal to `e` (the caller adds them).
  void define(int col, const LinExpr& e);

  // Every column's value given the values in `x` of the columns no AND, OR or define
  // determines (the decisions): the determined ones are computed in the order they were
  // defined (each definition reads only columns defined before it or free). With 0/1 decisions this
  // is the only point of the rows with those decisions.
  std::vector<double> complete(std::vector<double> x) const;

  std::vector<Column>& columns() { return columns_; }
  const std::vector<Column>& columns() const { return columns_; }
  const std::vector<Row>& rows() const { return rows_; }
  // Row activity at `x` (without the bounds).
  static double activity(const Row& row, const std::vector<double>& x);

 private:
  struct Definition {
    enum class Kind : std::uint8_t { free, all, any, sum } kind = Kind::free;
    std::vector<LinExpr> inputs;
  };
  void record(int col, Definition::Kind kind, const std::vector<LinExpr>& inputs);

  std::vector<Column> columns_;
  std::vector<Definition> definitions_;  // per column
  std::vector<int> defined_;             // the defined columns, in the order defined
  std::vector<Row> rows_;
  int zero_col_ = -1;
};

// Keeps [A-Za-z0-9._] and maps anything else to '_' (names MPS and LP readers accept).
std::string model_name(const std::string& text);

}  // namespace adacc::plan::detail
