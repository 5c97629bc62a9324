// The allocator sees every large buffer of a training step: the growth of the process's
// peak resident memory over model creation and two steps matches the bytes the
// allocator took from the system. In steady state a step takes no new memory from the
// system and causes (almost) no page faults.
#include <gtest/gtest.h>
#include <sys/resource.h>

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

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

TEST(StepMemory, AllocatorSeesEveryLargeBufferAndSteadyStateTakesNoNewMemory) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "resident memory under AddressSanitizer includes its shadow memory and "
                  "quarantine; this comparison runs in the release build";
#endif
  const int B = 8, T = 256;
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  {
    // Warm up, with a model of the same shapes, what a process pays once: the OpenMP
    // thread pool, the matmul library's JIT kernels and its scratch memory (which it
    // takes from malloc and keeps in malloc's free lists). Then give the warm-up
    // model's blocks back to the system, so that what the measured model uses is new.
    model::Gpt2 warm(model::parse_config("L=4,C=256,H=4,V=8192,T=256"), alloc);
    const model::StepGraph graph = warm.build_graph(B, T);
    runtime::StepExecutor exec(graph, warm.params(), warm.grads(), ctx);
    Tensor tokens = Tensor::zeros(alloc, {B, T}, DType::int32, MemCategory::activations, "t");
    exec.forward_backward(tokens, tokens);
  }
  alloc.release_cache();
  alloc.reset_peak();
  const std::size_t rss_start = proc_status_bytes("VmRSS");
  ASSERT_TRUE(reset_peak_rss()) << "cannot reset the peak RSS through /proc/self/clear_refs";

  model::Gpt2 gpt(model::parse_config("L=4,C=256,H=4,V=8192,T=256"), alloc);
  Rng rng(1);
  gpt.init_weights(rng);
  train::AdamWOptimizer opt(gpt.config(), alloc, ops::AdamWConfig{});
  Tensor tokens = Tensor::empty(alloc, {B, T}, DType::int32, MemCategory::activations, "tokens");
  for (std::int64_t i = 0; i < tokens.numel(); ++i) {
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.next_u64() % 8192);
  }
  const model::StepGraph graph = gpt.build_graph(B, T);
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  for (int step = 0; step < 2; ++step) {
    exec.forward_backward(tokens, tokens);
    opt.step(ctx, gpt.params(), gpt.grads(), 1e-3f);
  }
  const MemStats s = alloc.stats();
  const std::size_t rss_growth = proc_status_bytes("VmHWM") - rss_start;
  std::printf("allocator: live peak %.1f MiB, reserved peak %.1f MiB; peak RSS growth %.1f MiB\n",
              s.total_peak / 1048576.0, s.reserved_peak / 1048576.0, rss_growth / 1048576.0);
  ASSERT_GT(s.total_peak, std::size_t{200} << 20);  // parameters, optimizer, activations
  // What the allocator does not see (the matmul library's scratch, thread stacks, JIT
  // code, page tables) is a few percent at most.
  EXPECT_NEAR(static_cast<double>(rss_growth), static_cast<double>(s.reserved_peak),
              0.03 * static_cast<double>(s.reserved_peak) + (4 << 20));
  // Caching keeps the bytes held from the system close to the live peak.
  EXPECT_LT(static_cast<double>(s.reserved_peak), 1.15 * static_cast<double>(s.total_peak));

  // Steady state: the third step is served from the cache.
  const long faults_before = minor_faults();
  exec.forward_backward(tokens, tokens);
  opt.step(ctx, gpt.params(), gpt.grads(), 1e-3f);
  const long faults = minor_faults() - faults_before;
  const MemStats s3 = alloc.stats();
  EXPECT_EQ(s3.system_allocations, s.system_allocations);
  std::printf("steady-state step: %ld minor page faults (%zu pages held)\n", faults,
              s3.reserved / 4096);
  EXPECT_LT(faults, static_cast<long>(s3.reserved / 4096 / 100));
}

}  // namespace
}  // namespace adacc
