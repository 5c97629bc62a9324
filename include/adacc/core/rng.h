// Deterministic random numbers (xoshiro256**), with state that can be saved and
// restored so that a resumed run draws the same numbers as an uninterrupted one.
#pragma once

#include <array>
#include <cstdint>

namespace adacc {

class Rng {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit Rng(std::uint64_t seed = 1337);

  std::uint64_t next_u64();
  // Uniform in [0, 1).
  float uniform();
  // Standard normal (Box-Muller).
  float normal();

  State state() const { return state_; }
  void set_state(const State& state) { state_ = state; }

 private:
  State state_;
};

}  // namespace adacc
