// Budgeted, category-accounted, caching allocator (see allocator.h).
#include "adacc/core/allocator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>

#include <sys/mman.h>

#include "adacc/core/error.h"

namespace adacc {

std::string_view category_name(MemCategory category) {
  switch (category) {
    case MemCategory::params:
      return "params";
    case MemCategory::grads:
      return "grads";
    case MemCategory::optimizer:
      return "optimizer";
    case MemCategory::activations:
      return "activations";
    case MemCategory::compressed:
      return "compressed";
    case MemCategory::workspace:
      return "workspace";
  }
  return "?";
}

std::string format_bytes(std::size_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%zu B", bytes);
  } else {
    std::snprintf(text, sizeof text, "%.*f %s", value < 10 ? 2 : 1, value, kUnits[unit]);
  }
  return text;
}

std::string MemStats::breakdown() const {
  std::string out;
  for (int c = 0; c < kMemCategories; ++c) {
    if (current[c] == 0) continue;
    if (!out.empty()) out += ", ";
    out += std::string(category_name(static_cast<MemCategory>(c))) + " " + format_bytes(current[c]);
  }
  return out.empty() ? "nothing" : out;
}

namespace {

// Large blocks are mapped from the system directly, so that the pages the process holds
// for them are exactly the blocks (no malloc-heap fragmentation the allocator cannot
// see); small ones come from the C heap.
constexpr std::size_t kMapThreshold = std::size_t{1} << 16;

void* system_alloc(std::size_t block) {
  if (block < kMapThreshold) return std::aligned_alloc(Allocator::kAlignment, block);
  void* p = mmap(nullptr, block, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void system_free(void* data, std::size_t block) {
  if (block < kMapThreshold) {
    std::free(data);
  } else {
    munmap(data, block);
  }
}

}  // namespace

// ---- Buffer ----

Buffer::Buffer(Buffer&& other) noexcept
    : owner_(other.owner_),
      data_(other.data_),
      bytes_(other.bytes_),
      block_bytes_(other.block_bytes_),
      category_(other.category_) {
  other.owner_ = nullptr;
  other.data_ = nullptr;
  other.bytes_ = other.block_bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    data_ = other.data_;
    bytes_ = other.bytes_;
    block_bytes_ = other.block_bytes_;
    category_ = other.category_;
    other.owner_ = nullptr;
    other.data_ = nullptr;
    other.bytes_ = other.block_bytes_ = 0;
  }
  return *this;
}

Buffer::~Buffer() {
  release();
}

Device Buffer::device() const {
  return owner_ ? owner_->device() : Device::cpu;
}

void Buffer::release() noexcept {
  if (owner_ && data_) owner_->deallocate(data_, bytes_, block_bytes_, category_);
  owner_ = nullptr;
  data_ = nullptr;
  bytes_ = block_bytes_ = 0;
}

// ---- Allocator ----

Allocator::Allocator(Device device, std::size_t budget) : device_(device), budget_(budget) {
  if (device != Device::cpu) {
    throw BackendError("[allocator] device '" + std::string(device_name(device)) +
                       "' is not available in this build; use the cpu device");
  }
}

Allocator::~Allocator() {
  std::lock_guard lock(mutex_);
  if (stats_.total_current != 0) {
    // A Buffer outlived its allocator: a programming error. Report it rather than
    // free memory that a live Buffer still points at.
    std::fprintf(stderr, "[allocator] destroyed with %s still allocated (%s)\n",
                 format_bytes(stats_.total_current).c_str(), stats_.breakdown().c_str());
  }
  release_cache_locked();
}

std::size_t Allocator::block_size(std::size_t bytes) {
  // Small blocks: multiples of the alignment. Large blocks: multiples of a page, so a
  // cached block is reused only by requests of (nearly) the same size.
  const std::size_t align = bytes >= kMapThreshold ? 4096 : kAlignment;
  return (bytes + align - 1) / align * align;
}

Buffer Allocator::allocate(std::size_t bytes, MemCategory category, std::string_view what) {
  const std::size_t accounted =
      (std::max<std::size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  const std::size_t block = block_size(accounted);
  std::lock_guard lock(mutex_);
  if (stats_.total_current + accounted > budget_ || stats_.total_current + accounted < accounted) {
    throw OutOfMemory("[allocator] out of memory: '" + std::string(what) + "' needs " +
                      format_bytes(accounted) + " of " + std::string(category_name(category)) +
                      " but " + format_bytes(stats_.total_current) + " of the budget " +
                      format_bytes(budget_) + " is in use (" + stats_.breakdown() +
                      "); raise --budget or choose a policy that keeps less");
  }
  void* data = nullptr;
  // Reuse a cached block of the same size class, allowing 1/8 slack.
  auto it = cache_.lower_bound(block);
  std::size_t got = block;
  if (it != cache_.end() && it->first <= block + block / 8) {
    data = it->second;
    got = it->first;
    cache_.erase(it);
  } else {
    if (budget_ != kUnlimited && stats_.reserved + block > budget_) release_cache_locked();
    data = system_alloc(block);
    if (data == nullptr) {
      release_cache_locked();
      data = system_alloc(block);
    }
    if (data == nullptr) {
      throw OutOfMemory("[allocator] the system refused " + format_bytes(block) + " for '" +
                        std::string(what) + "' (" + stats_.breakdown() + " in use)");
    }
    stats_.reserved += block;
    stats_.reserved_peak = std::max(stats_.reserved_peak, stats_.reserved);
    ++stats_.system_allocations;
  }
  const int c = static_cast<int>(category);
  stats_.current[c] += accounted;
  stats_.peak[c] = std::max(stats_.peak[c], stats_.current[c]);
  stats_.total_current += accounted;
  if (stats_.total_current > stats_.total_peak) {
    stats_.total_peak = stats_.total_current;
    stats_.at_peak = stats_.current;
  }
  stats_.interval_category_peak[c] = std::max(stats_.interval_category_peak[c], stats_.current[c]);
  if (stats_.total_current > stats_.interval_peak) {
    stats_.interval_peak = stats_.total_current;
    stats_.at_interval_peak = stats_.current;
  }
  Buffer buffer;
  buffer.owner_ = this;
  buffer.data_ = data;
  buffer.bytes_ = accounted;
  buffer.block_bytes_ = got;
  buffer.category_ = category;
  return buffer;
}

void Allocator::deallocate(void* data, std::size_t bytes, std::size_t block_bytes,
                           MemCategory category) noexcept {
  std::lock_guard lock(mutex_);
  const int c = static_cast<int>(category);
  stats_.current[c] -= bytes;
  stats_.total_current -= bytes;
  try {
    cache_.emplace(block_bytes, data);
  } catch (...) {
    system_free(data, block_bytes);
    stats_.reserved -= block_bytes;
  }
}

std::size_t Allocator::budget() const {
  std::lock_guard lock(mutex_);
  return budget_;
}

void Allocator::set_budget(std::size_t budget) {
  std::lock_guard lock(mutex_);
  if (stats_.total_current > budget) {
    throw InvalidArgument("[allocator] budget " + format_bytes(budget) + " is below the " +
                          format_bytes(stats_.total_current) + " already in use (" +
                          stats_.breakdown() + ")");
  }
  budget_ = budget;
}

MemStats Allocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Allocator::reset_peak() {
  std::lock_guard lock(mutex_);
  stats_.peak = stats_.current;
  stats_.at_peak = stats_.current;
  stats_.total_peak = stats_.total_current;
  stats_.reserved_peak = stats_.reserved;
}

void Allocator::start_interval() {
  std::lock_guard lock(mutex_);
  stats_.interval_peak = stats_.total_current;
  stats_.at_interval_peak = stats_.current;
  stats_.interval_category_peak = stats_.current;
}

void Allocator::release_cache() {
  std::lock_guard lock(mutex_);
  release_cache_locked();
}

void Allocator::release_cache_locked() {
  for (auto& [size, data] : cache_) {
    system_free(data, size);
    stats_.reserved -= size;
  }
  cache_.clear();
}

}  // namespace adacc
