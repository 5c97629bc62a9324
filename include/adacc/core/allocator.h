// The budgeted allocator: one per device, a hard byte budget, accounting by category.
//
// Every byte the engine holds (parameters, gradients, optimizer state, activations,
// compressed activations, workspace) comes from here, so that a plan's predicted peak
// and the measured peak can be compared, and so that the budget is enforced the same
// way on a CPU as on a GPU. Freed blocks are cached by size and handed out again, so a
// training step in steady state neither calls the system allocator nor page-faults on
// the blocks it holds.
//
// Accounting is by request (rounded up to kAlignment); the bytes the cache holds from
// the system are reported separately as `reserved`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "adacc/core/dtype.h"

namespace adacc {

enum class MemCategory : std::uint8_t {
  params,
  grads,
  optimizer,
  activations,
  compressed,
  workspace,
};
inline constexpr int kMemCategories = 6;

std::string_view category_name(MemCategory category);

// Human-readable byte count: "512 B", "3.0 KiB", "1.25 GiB".
std::string format_bytes(std::size_t bytes);

struct MemStats {
  std::array<std::size_t, kMemCategories> current{};  // live bytes per category
  std::array<std::size_t, kMemCategories> peak{};     // peak of each category alone
  std::array<std::size_t, kMemCategories> at_peak{};  // per category when the total peaked
  std::size_t total_current = 0;
  std::size_t total_peak = 0;
  std::size_t reserved = 0;  // bytes held from the system: live + cached
  std::size_t reserved_peak = 0;
  std::size_t system_allocations = 0;  // blocks requested from the system so far
  // Since the last start_interval() (a second window, which reset_peak does not touch:
  // the step timeline's, see runtime/step_timeline.h): the highest total, each category
  // when the total reached it, and each category's own highest.
  std::size_t interval_peak = 0;
  std::array<std::size_t, kMemCategories> at_interval_peak{};
  std::array<std::size_t, kMemCategories> interval_category_peak{};

  std::size_t current_of(MemCategory c) const { return current[static_cast<int>(c)]; }
  std::size_t peak_of(MemCategory c) const { return peak[static_cast<int>(c)]; }
  // "params 474.7 MiB, grads 474.7 MiB, ..." (current bytes of the non-empty categories)
  std::string breakdown() const;
};

class Allocator;

// RAII owner of one allocation; returns its bytes to the allocator when destroyed.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  ~Buffer();

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  MemCategory category() const { return category_; }
  Device device() const;
  explicit operator bool() const { return data_ != nullptr; }

 private:
  friend class Allocator;
  void release() noexcept;

  Allocator* owner_ = nullptr;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;        // accounted bytes (request rounded to kAlignment)
  std::size_t block_bytes_ = 0;  // size of the block taken from the cache or system
  MemCategory category_ = MemCategory::workspace;
};

class Allocator {
 public:
  static constexpr std::size_t kUnlimited = SIZE_MAX;
  static constexpr std::size_t kAlignment = 64;

  explicit Allocator(Device device = Device::cpu, std::size_t budget = kUnlimited);
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;
  ~Allocator();

  // Allocates `bytes` (at least 1) for `category`. `what` names the request in errors.
  // Throws OutOfMemory if the live total would exceed the budget.
  Buffer allocate(std::size_t bytes, MemCategory category, std::string_view what);

  Device device() const { return device_; }
  std::size_t budget() const;
  // Throws InvalidArgument if the live total already exceeds the new budget.
  void set_budget(std::size_t budget);

  MemStats stats() const;
  // Starts a new peak window: every peak becomes the current value.
  void reset_peak();
  // Starts a new interval (MemStats::interval_*): its peaks become the current values.
  void start_interval();
  // Returns every cached (free) block to the system.
  void release_cache();

 private:
  friend class Buffer;
  void deallocate(void* data, std::size_t bytes, std::size_t block_bytes,
                  MemCategory category) noexcept;
  void release_cache_locked();
  static std::size_t block_size(std::size_t bytes);

  Device device_;
  mutable std::mutex mutex_;
  std::size_t budget_;
  MemStats stats_;
  std::multimap<std::size_t, void*> cache_;  // free blocks by block size
};

}  // namespace adacc
