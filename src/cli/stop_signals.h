// SIGINT (Ctrl-C) and SIGTERM (what Slurm, Kubernetes and `timeout` send), taken by one
// waiting thread instead of a handler.
//
// A handler runs on whichever thread the kernel picks, in the middle of whatever it was
// computing; runs interrupted that way inside the matmul library's threads ended with
// SIGSEGV, SIGABRT or a failed sgemm (a few in a hundred). So the signals are blocked in
// every thread — the constructor blocks them in the calling thread, and threads started
// later (OpenMP's, oneDNN's) inherit the mask — and one thread waits for them with
// sigwait(), where nothing is interrupted.
//
// Until arm(), a signal ends the process as its default action would. Once armed, the
// first signal sets the stop flag (training stops at the next step boundary and saves;
// sampling stops before its next token) and a second one ends the process at once. An
// interrupted command exits with exit_code(): 128 + the signal's number (130, 143), as a
// shell reports a process killed by it.
#pragma once

#include <atomic>
#include <memory>

namespace adacc::cli {

class StopSignals {
 public:
  // Construct first in main, before any other thread starts.
  StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  void arm();
  // True once an armed signal arrived; what the trainer and the sampler poll.
  const std::atomic<bool>* flag() const;
  bool requested() const { return flag()->load(); }
  int exit_code() const;

  struct State;

 private:
  // Shared with the waiting thread, which outlives this object (it is detached and ends
  // with the process).
  std::shared_ptr<State> state_;
};

}  // namespace adacc::cli
