// Helpers shared by the tests: random data, copies between Tensors and float64
// vectors, error measures, and central finite differences (and, through
// support/expect_error.h, the checks on thrown errors).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "adacc/core/error.h"
#include "adacc/core/rng.h"
#include "adacc/core/tensor.h"
#include "support/expect_error.h"

namespace adacc::test {

using Vec = std::vector<double>;

// n values uniform in [lo, hi).
inline Vec random_vec(Rng& rng, std::size_t n, double lo = -1.0, double hi = 1.0) {
  Vec v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}

// n values from N(0, std^2).
inline Vec normal_vec(Rng& rng, std::size_t n, double std = 1.0) {
  Vec v(n);
  for (auto& x : v) x = std * rng.normal();
  return v;
}

// A float tensor holding v (rounded to float); the float64 view of the rounded values is
// what references should be given, so use to_vec() on the result.
inline Tensor to_tensor(Allocator& alloc, const Vec& v, Shape shape, std::string_view name = "t",
                        MemCategory category = MemCategory::activations) {
  Tensor t = Tensor::empty(alloc, std::move(shape), DType::f32, category, name);
  float* p = t.data<float>();
  for (std::size_t i = 0; i < v.size(); ++i) p[i] = static_cast<float>(v[i]);
  return t;
}

inline Tensor to_int_tensor(Allocator& alloc, const std::vector<int>& v, Shape shape,
                            std::string_view name = "tokens") {
  Tensor t = Tensor::empty(alloc, std::move(shape), DType::int32, MemCategory::activations, name);
  std::copy(v.begin(), v.end(), t.data<std::int32_t>());
  return t;
}

inline Vec to_vec(const Tensor& t) {
  const float* p = t.data<float>();
  return Vec(p, p + t.numel());
}

// Rounds every value to float, so references see exactly what the fp32 kernels see.
inline Vec round_to_float(Vec v) {
  for (auto& x : v) x = static_cast<float>(x);
  return v;
}

// ||a - b|| / max(||b||, tiny): the relative L2 error of a against the reference b.
inline double rel_error(const Vec& a, const Vec& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

inline double max_abs_diff(const Vec& a, const Vec& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Central finite difference of the scalar f with respect to x[i], step h.
inline double finite_difference(const std::function<double()>& f, Vec& x, std::size_t i,
                                double h = 1e-6) {
  const double saved = x[i];
  x[i] = saved + h;
  const double plus = f();
  x[i] = saved - h;
  const double minus = f();
  x[i] = saved;
  return (plus - minus) / (2 * h);
}

// sum_i w[i] * y[i]: a scalar whose gradient with respect to y is w, used to turn an
// op's output into a loss for finite-difference checks.
inline double dot(const Vec& w, const Vec& y) {
  double s = 0;
  for (std::size_t i = 0; i < w.size(); ++i) s += w[i] * y[i];
  return s;
}

}  // namespace adacc::test
