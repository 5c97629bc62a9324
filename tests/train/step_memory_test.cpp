// The allocator sees every large buffer of a training step: the growth of the process's
// peak resident memory during a step matches the growth of the allocator's peak.
#include <gtest/gtest.h>
#include <malloc.h>

#include <fstream>
#include <string>

#include "adacc/model/gpt2.h"
#include "adacc/runtime/step_executor.h"
#include "adacc/train/adamw_optimizer.h"

namespace adacc {
namespace {

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM").
std::size_t proc_status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  }
  return 0;
}

// Resets the peak resident set size (VmHWM) to the current one (Linux >= 4.0).
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

TEST(StepMemory, AllocatorPeakMatchesPeakResidentMemory) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  model::Gpt2 gpt(model::parse_config("L=4,C=256,H=4,V=8192,T=256"), alloc);
  Rng rng(1);
  gpt.init_weights(rng);
  train::AdamWOptimizer opt(gpt.config(), alloc, ops::AdamWConfig{});
  const int B = 8, T = 256;
  Tensor tokens = Tensor::empty(alloc, {B, T}, DType::int32, MemCategory::activations, "tokens");
  for (std::int64_t i = 0; i < tokens.numel(); ++i) {
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.next_u64() % 8192);
  }
  const model::StepGraph graph = gpt.build_graph(B, T);
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  // A first step starts the thread pool and the matmul library's JIT kernels.
  exec.forward_backward(tokens, tokens);
  opt.step(ctx, gpt.params(), gpt.grads(), 1e-3f);

  alloc.release_cache();
  malloc_trim(0);
  const std::size_t held_before = alloc.stats().total_current;
  const std::size_t rss_before = proc_status_bytes("VmRSS");
  ASSERT_TRUE(reset_peak_rss()) << "cannot reset the peak RSS through /proc/self/clear_refs";
  alloc.reset_peak();

  exec.forward_backward(tokens, tokens);
  opt.step(ctx, gpt.params(), gpt.grads(), 1e-3f);

  const std::size_t rss_growth = proc_status_bytes("VmHWM") - rss_before;
  const std::size_t alloc_growth = alloc.stats().total_peak - held_before;
  std::printf("step: allocator peak growth %.1f MiB, peak RSS growth %.1f MiB\n",
              alloc_growth / 1048576.0, rss_growth / 1048576.0);
  ASSERT_GT(alloc_growth, std::size_t{100} << 20);  // the step's activations are large
  // Memory the allocator does not see (libraries' scratch, page-table and malloc
  // overheads) stays within a few percent.
  EXPECT_NEAR(static_cast<double>(rss_growth), static_cast<double>(alloc_growth),
              0.03 * static_cast<double>(alloc_growth) + (4 << 20));
}

}  // namespace
}  // namespace adacc
