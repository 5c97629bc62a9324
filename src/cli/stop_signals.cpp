#include "stop_signals.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <thread>

namespace adacc::cli {

struct StopSignals::State {
  sigset_t set{};
  std::atomic<bool> armed{false};
  std::atomic<bool> stop{false};
  std::atomic<int> signal{0};
};

namespace {

// Ends the process as `sig`'s default action does (a shell sees it killed by the signal).
[[noreturn]] void die_by(int sig) {
  std::signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  raise(sig);  // to this thread, where it is now unblocked: the default action ends all
  _exit(128 + sig);
}

void wait_for_signals(const std::shared_ptr<StopSignals::State>& s) {
  for (;;) {
    int sig = 0;
    if (sigwait(&s->set, &sig) != 0) continue;
    if (!s->armed.load() || s->stop.load()) die_by(sig);
    s->signal.store(sig);
    s->stop.store(true);
  }
}

}  // namespace

StopSignals::StopSignals() : state_(std::make_shared<State>()) {
  sigemptyset(&state_->set);
  sigaddset(&state_->set, SIGINT);
  sigaddset(&state_->set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &state_->set, nullptr);
  std::thread([s = state_] { wait_for_signals(s); }).detach();
}

void StopSignals::arm() {
  state_->armed.store(true);
}

const std::atomic<bool>* StopSignals::flag() const {
  return &state_->stop;
}

int StopSignals::exit_code() const {
  return 128 + state_->signal.load();
}

}  // namespace adacc::cli
