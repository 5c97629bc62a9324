// Step timelines and their comparison (see step_timeline.h).
#include "adacc/runtime/step_timeline.h"

#include <algorithm>
#include <numeric>

namespace adacc::runtime {

std::size_t TimelinePoint::total() const {
  return std::accumulate(live.begin(), live.end(), std::size_t{0});
}

TimelinePoint timeline_point(std::string label, const MemStats& stats) {
  TimelinePoint p;
  p.label = std::move(label);
  p.live = stats.current;
  p.peak = stats.interval_peak;
  p.at_peak = stats.at_interval_peak;
  p.category_peak = stats.interval_category_peak;
  return p;
}

namespace {

using Bytes = std::array<std::size_t, kMemCategories>;

// "activations 4096 vs 8192, workspace 0 vs 64" for the categories that differ.
std::string differing_categories(const Bytes& a, const Bytes& b) {
  std::string out;
  for (int c = 0; c < kMemCategories; ++c) {
    if (a[c] == b[c]) continue;
    if (!out.empty()) out += ", ";
    out += std::string(category_name(static_cast<MemCategory>(c))) + " " + std::to_string(a[c]) +
           " vs " + std::to_string(b[c]);
  }
  return out;
}

}  // namespace

std::string first_difference(const StepTimeline& a, const StepTimeline& b,
                             const std::string& a_name, const std::string& b_name) {
  const std::string sides = " (" + a_name + " vs " + b_name + ")";
  for (std::size_t k = 0; k < std::min(a.size(), b.size()); ++k) {
    const TimelinePoint& x = a[k];
    const TimelinePoint& y = b[k];
    std::string where = "point " + std::to_string(k) + " '" + x.label + "'";
    if (x.label != y.label) {
      where += ": labelled '";
      where += y.label;
      where += "' in the ";
      where += b_name;
      return where;
    }
    std::string diff;
    auto add = [&](const std::string& what, const std::string& text) {
      if (text.empty()) return;
      if (!diff.empty()) diff += "; ";
      diff += what;
      diff += ": ";
      diff += text;
    };
    add("live after", differing_categories(x.live, y.live));
    if (x.peak != y.peak) {
      add("peak during", std::to_string(x.peak) + " vs " + std::to_string(y.peak));
    }
    add("at that peak", differing_categories(x.at_peak, y.at_peak));
    add("each category's own peak", differing_categories(x.category_peak, y.category_peak));
    if (!diff.empty()) {
      where += sides;
      where += ": ";
      where += diff;
      return where;
    }
  }
  if (a.size() != b.size()) {
    const StepTimeline& longer = a.size() > b.size() ? a : b;
    return "the " + a_name + " timeline has " + std::to_string(a.size()) + " points, the " +
           b_name + " one " + std::to_string(b.size()) + "; the first unmatched is '" +
           longer[std::min(a.size(), b.size())].label + "'";
  }
  return "";
}

}  // namespace adacc::runtime
