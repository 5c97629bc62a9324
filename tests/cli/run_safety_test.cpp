// What `adacc train` promises about the user's files and runs, through the real binary:
// --out is checked before training and locked while in use; a new run never deletes
// what it did not write; --resume continues with the checkpoint's options; every
// numeric flag is range-checked; SIGTERM and SIGINT stop at a step boundary, save and
// exit 143 / 130; a NaN stop keeps the last good checkpoint; a file named like a
// baseline does not shadow it; a model that cannot fit the machine is refused before
// anything is allocated; metrics write errors are errors and a resumed run writes each
// step's line once.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>

#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "cli/cli_fixture.h"

namespace {

using Clock = std::chrono::steady_clock;

class RunSafety : public AdaccCli {
 protected:
  std::string data() { return write("corpus.txt", corpus()).string(); }

  std::string train_args(const fs::path& out, int steps) {
    return "train --data " + data() + kTiny + " --steps " + std::to_string(steps) +
           " --val-batches 1 --out " + out.string();
  }

  // A one-line error naming every needle, exit code 1.
  static void expect_one_line_error(const CommandResult& r,
                                    std::initializer_list<std::string> needles) {
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_EQ(r.err.rfind("adacc: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const std::string& n : needles)
      EXPECT_NE(r.err.find(n), std::string::npos) << n << "\n" << r.err;
  }

  // Every file under `dir` but the lock (relative name -> content), to check that
  // nothing changed.
  static std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().filename() != ".adacc.lock") {
        files[fs::relative(e.path(), dir).string()] = slurp(e.path());
      }
    }
    return files;
  }

  static void expect_same_files(const std::map<std::string, std::string>& now,
                                const std::map<std::string, std::string>& before) {
    EXPECT_EQ(now.size(), before.size());
    for (const auto& [name, content] : before) {
      const auto it = now.find(name);
      EXPECT_TRUE(it != now.end() && it->second == content) << name << " changed or went";
    }
  }

  // Starts adacc in the background (stdout/stderr to files in dir_); returns its pid.
  pid_t start(const std::string& args) {
    const std::string cmd = "exec " + std::string(ADACC_BINARY) + " " + args + " >" +
                            (dir_ / "bg.out").string() + " 2>" + (dir_ / "bg.err").string();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid;
  }

  // Waits until `pred` holds (polling), at most `seconds`.
  template <class Pred>
  static bool wait_for(Pred pred, double seconds) {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
  }

  static int exit_code_of(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

TEST_F(RunSafety, UnusableOutIsAnErrorBeforeTraining) {
  const fs::path file = write("a-file", "mine");
  for (const fs::path& out : {file, file / "run", fs::path("/proc/adacc-run")}) {
    const auto t0 = Clock::now();
    const CommandResult r = adacc(train_args(out, 1000));
    expect_one_line_error(r, {"--out", out.string()});
    EXPECT_EQ(r.out.find("step"), std::string::npos) << r.out;  // no training happened
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 20.0);
  }
  EXPECT_EQ(slurp(file), "mine");
}

TEST_F(RunSafety, NewRunNeverDeletesWhatItDidNotWrite) {
  const fs::path run = dir_ / "run";
  ASSERT_EQ(adacc(train_args(run, 4) + " --save-every 2").exit_code, 0);
  write("run/notes.txt", "my notes");
  write("run/model-2.safetensors", "my own model-2");  // a user's file of a checkpoint's name
  const auto before = snapshot(run);

  // A new run into it (not a resume) is refused, and nothing changes.
  expect_one_line_error(adacc(train_args(run, 4)), {"not empty", "--resume", "--overwrite"});
  expect_same_files(snapshot(run), before);

  // --overwrite replaces the old run's checkpoint and keeps the user's files.
  const CommandResult r = adacc(train_args(run, 6) + " --overwrite --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slurp(run / "notes.txt"), "my notes");
  EXPECT_EQ(slurp(run / "model-2.safetensors"), "my own model-2");
  EXPECT_FALSE(fs::exists(run / "model-4.safetensors"));  // the old run's checkpoint went
  EXPECT_TRUE(fs::exists(run / "model-6.safetensors"));
}

TEST_F(RunSafety, ARunDirectoryInUseIsRefusedNamingTheHolder) {
  const fs::path run = dir_ / "run";
  ASSERT_EQ(adacc(train_args(run, 4) + " --stop-after 2").exit_code, 0);
  const auto before = snapshot(run);
  const int fd = ::open((run / ".adacc.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const std::string holder = "adacc train (pid 4242 on testhost, since now)\n";
  ASSERT_EQ(::write(fd, holder.data(), holder.size()), static_cast<ssize_t>(holder.size()));
  expect_one_line_error(adacc(train_args(run, 2) + " --overwrite"),
                        {"in use", "pid 4242 on testhost"});
  expect_one_line_error(adacc("train --resume " + run.string()), {"in use", "pid 4242"});
  expect_same_files(snapshot(run), before);
  ::close(fd);  // released: the directory is usable again
  EXPECT_EQ(adacc("train --resume " + run.string()).exit_code, 0);
}

TEST_F(RunSafety, ResumeTakesTheRunsOptionsFromTheCheckpoint) {
  const fs::path whole = dir_ / "whole", part = dir_ / "part";
  const std::string opts = " --lr 0.003 --schedule constant --val-every 3";
  ASSERT_EQ(adacc(train_args(whole, 8) + opts).exit_code, 0);
  const CommandResult stopped = adacc(train_args(part, 8) + opts + " --stop-after 5");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_NE(stopped.out.find("resume with: adacc train --resume " + part.string()),
            std::string::npos)
      << stopped.out;

  // As the README shows it: no --data, --model, --batch, ... and no --out.
  const CommandResult resumed = adacc("train --resume " + part.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(slurp(part / "model.safetensors"), slurp(whole / "model.safetensors"));  // bit-exact

  // A flag that contradicts the checkpoint names the option and both values.
  expect_one_line_error(adacc("train --resume " + part.string() + " --batch 4"),
                        {"--batch 4", "--batch 2"});
  expect_one_line_error(adacc("train --resume " + part.string() + " --model gpt2-tiny"),
                        {"--model gpt2-tiny", "L1"});
  expect_one_line_error(adacc("train --resume " + part.string() + " --lr 0.01"),
                        {"--lr 0.01", "--lr 0.003"});
  // Repeating the checkpoint's own values is fine; so is asking for more steps.
  const CommandResult more =
      adacc("train --resume " + part.string() + " --batch 2 --seq 16 --steps 10");
  EXPECT_EQ(more.exit_code, 0) << more.err;
  EXPECT_TRUE(fs::exists(part / "model-10.safetensors"));
}

TEST_F(RunSafety, EveryNumericFlagHasItsRange) {
  const std::string d = data();
  const std::pair<const char*, const char*> bad[] = {
      {"--beta1 1", "--beta1"},
      {"--beta2 2", "--beta2"},
      {"--eps 0", "--eps"},
      {"--eps -1e-8", "--eps"},
      {"--min-lr-fraction -0.5", "--min-lr-fraction"},
      {"--weight-decay nan", "--weight-decay"},
      {"--grad-clip nan", "--grad-clip"},
      {"--val-fraction nan", "--val-fraction"},
      {"--lr inf", "--lr"},
      {"--lr nan", "--lr"},
      {"--val-batches 0", "--val-batches"},
      {"--threads -1", "--threads"},
      {"--threads 100000", "--threads"},
      {"--warmup -2", "--warmup"},
      {"--max-bad-steps 0", "--max-bad-steps"},
      {"--save-every -1", "--save-every"},
  };
  for (const auto& [flag, name] : bad) {
    expect_error("train --data " + d + kTiny + " --steps 2 " + flag, name);
  }
  const fs::path model = write("m.safetensors", "");
  expect_one_line_error(adacc("sample --model " + model.string() + " --top-k -1"), {"--top-k"});
  expect_one_line_error(adacc("sample --model " + model.string() + " --temperature nan"),
                        {"--temperature"});
  expect_one_line_error(adacc("plan --model gpt2-tiny --batch 0"), {"--batch"});
  expect_one_line_error(adacc("plan --model gpt2-tiny --threads 5000"), {"--threads"});
}

TEST_F(RunSafety, SigtermAndSigintStopAtAStepSaveAndExitNonZero) {
  for (const int sig : {SIGTERM, SIGINT}) {
    const fs::path run = dir_ / ("run" + std::to_string(sig));
    const fs::path metrics = dir_ / ("m" + std::to_string(sig) + ".jsonl");
    const pid_t pid = start(train_args(run, 100000) + " --metrics " + metrics.string());
    ASSERT_TRUE(
        wait_for([&] { return slurp(metrics).find("\"step\":2") != std::string::npos; }, 60));
    ::kill(pid, sig);
    // (Seen once under a loaded ctest: exit 134, SIGABRT, not reproduced in 50 runs since;
    // stderr is printed so that the next occurrence says why.)
    EXPECT_EQ(exit_code_of(pid), 128 + sig) << slurp(dir_ / "bg.err");
    const std::string out = slurp(dir_ / "bg.out");
    EXPECT_NE(out.find("interrupted"), std::string::npos) << out;
    EXPECT_NE(out.find("resume with: adacc train --resume " + run.string()), std::string::npos)
        << out;
    EXPECT_TRUE(fs::exists(run / "checkpoint.json"));
    // The saved run continues.
    const CommandResult r = adacc("train --resume " + run.string() + " --stop-after 1");
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
}

// No thread of a training run can be interrupted by SIGINT or SIGTERM: every thread has
// them blocked and none has a handler for them (one thread takes them with sigwait). A
// handler interrupting the matmul library's threads had ended runs with SIGSEGV, SIGABRT
// or a failed sgemm a few times in a hundred.
TEST_F(RunSafety, StopSignalsReachNoComputeThreadOfATrainingRun) {
  const fs::path run = dir_ / "run";
  const fs::path metrics = dir_ / "m.jsonl";
  const pid_t pid = start(train_args(run, 100000) + " --threads 2 --metrics " + metrics.string());
  ASSERT_TRUE(wait_for([&] { return slurp(metrics).find("\"step\":2") != std::string::npos; }, 60));
  const std::uint64_t stop_bits = (1ULL << (SIGINT - 1)) | (1ULL << (SIGTERM - 1));
  int threads = 0;
  int unblocked = 0;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    const std::string status = slurp(task.path() / "status");
    auto mask = [&](const std::string& field) {
      const std::size_t at = status.find("\n" + field + ":");
      EXPECT_NE(at, std::string::npos) << field;
      return std::stoull(status.substr(at + field.size() + 2), nullptr, 16);
    };
    // The waiting thread shows them unblocked while it sits in sigwait (the kernel lifts
    // the mask for the wait), so one thread may.
    if ((mask("SigBlk") & stop_bits) != stop_bits) ++unblocked;
    EXPECT_EQ(mask("SigCgt") & stop_bits, 0u) << task.path() << "\n" << status;
    ++threads;
  }
  EXPECT_GE(threads, 3);  // main, the signal waiter, an OpenMP worker
  EXPECT_LE(unblocked, 1) << "of " << threads << " threads";
  ::kill(pid, SIGTERM);
  EXPECT_EQ(exit_code_of(pid), 128 + SIGTERM) << slurp(dir_ / "bg.err");
}

// The first signal asks for a stop at the next step boundary; a second one ends the
// process at once, as its default action does (killed by it, not exiting 130 after a save).
// SIGINT then SIGTERM, sent together: different signals are both delivered, in order.
TEST_F(RunSafety, ASecondSignalEndsTheRunAtOnce) {
  const fs::path run = dir_ / "run";
  const fs::path metrics = dir_ / "m.jsonl";
  const pid_t pid = start(train_args(run, 100000) + " --metrics " + metrics.string());
  ASSERT_TRUE(wait_for([&] { return slurp(metrics).find("\"step\":2") != std::string::npos; }, 60));
  ::kill(pid, SIGINT);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
      << "exited with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "\n"
      << slurp(dir_ / "bg.out");
}

TEST_F(RunSafety, CtrlCDuringTheFinalSampleStopsAtOnce) {
  const fs::path run = dir_ / "run";
  const pid_t pid = start(train_args(run, 2) + " --sample 1000000");
  ASSERT_TRUE(
      wait_for([&] { return slurp(dir_ / "bg.out").find("sample:") != std::string::npos; }, 60));
  const auto t0 = Clock::now();
  ::kill(pid, SIGINT);
  EXPECT_EQ(exit_code_of(pid), 130);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 5.0);
  EXPECT_TRUE(fs::exists(run / "model.safetensors"));
}

TEST_F(RunSafety, NanStopKeepsTheLastGoodCheckpoint) {
  const fs::path run = dir_ / "run";
  const CommandResult r =
      adacc(train_args(run, 50) + " --lr 1e30 --grad-clip 0 --save-every 1 --max-bad-steps 3");
  expect_one_line_error(r, {"NaN", "last good checkpoint (step 1)", run.string()});
  EXPECT_NE(slurp(run / "checkpoint.json").find("\"step\": 1,"), std::string::npos);
  EXPECT_TRUE(fs::exists(run / "model-1.safetensors"));
}

TEST_F(RunSafety, AFileNamedLikeABaselineDoesNotShadowIt) {
  write("full", "not a plan");
  fs::create_directories(dir_ / "none");
  const std::string plan = "plan --model L=2,C=32,H=2,V=256,T=64 --batch 2 --seq 32 --threads 1";
  const std::string in_dir = "sh -c 'cd " + dir_.string() + " && " + ADACC_BINARY + " ";
  for (const char* policy : {"full", "none"}) {
    const int status =
        std::system((in_dir + plan + " --policy " + policy + " >/dev/null 2>&1'").c_str());
    EXPECT_EQ(WEXITSTATUS(status), 0) << policy;
  }
  // A path names the file.
  const int status = std::system(
      (in_dir + plan + " --policy ./full >/dev/null 2>" + (dir_ / "e").string() + "'").c_str());
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(slurp(dir_ / "e").find("./full"), std::string::npos) << slurp(dir_ / "e");
}

TEST_F(RunSafety, AModelThatCannotFitTheMachineIsRefusedBeforeAllocating) {
  const auto t0 = Clock::now();
  const CommandResult r =
      adacc("train --data " + data() + " --model L=100000,C=64,H=2,V=256,T=32 --batch 2 --seq 16");
  expect_one_line_error(r, {"memory", "smaller model"});
  // A percentage budget is capped by the machine too.
  expect_one_line_error(adacc("train --data " + data() +
                              " --model L=100000,C=64,H=2,V=256,T=32 --batch 2 --seq 16 "
                              "--budget 100%"),
                        {"memory", "smaller model"});
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0);
  // An explicit budget is the cap instead.
  expect_one_line_error(adacc("train --data " + data() + kTiny + " --budget 1KiB"), {"budget"});
}

TEST_F(RunSafety, PlanningThousandsOfLayersIsQuick) {
  // Linear in L: ~0.2 s of CPU at L=4000 in a release build (it took 8 s when planning
  // was quadratic, several times that under sanitizers); the bounds leave room for a busy
  // machine (an AddressSanitizer run took 6.3 s while a release build ran beside it).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
  constexpr double kBoundSeconds = 20.0;
#else
  constexpr double kBoundSeconds = 6.0;
#endif
  const auto t0 = Clock::now();
  const CommandResult r =
      adacc("plan --model L=4000,C=64,H=2,V=256,T=64 --batch 1 --seq 16 --threads 1 --policy full");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("predicted peak"), std::string::npos) << r.out;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), kBoundSeconds);
}

TEST_F(RunSafety, MetricsWriteErrorsFailTheRun) {
  expect_one_line_error(adacc(train_args(dir_ / "run", 3) + " --metrics /dev/full"), {"/dev/full"});
}

TEST_F(RunSafety, AResumedRunWritesEachStepsMetricsOnce) {
  const fs::path run = dir_ / "run", m = dir_ / "m.jsonl";
  ASSERT_EQ(adacc(train_args(run, 8) + " --metrics " + m.string() + " --stop-after 4").exit_code,
            0);
  // What a crash after step 6 leaves: lines of steps after the checkpoint, a torn line.
  std::ofstream(m, std::ios::app) << "{\"step\":5,\"loss\":1}\n{\"step\":6,\"loss\":1}\n{\"ste";
  ASSERT_EQ(adacc("train --resume " + run.string()).exit_code, 0);
  std::ifstream in(m);
  std::vector<int> steps;
  for (std::string line; std::getline(in, line);) {
    if (line.find("val_loss") != std::string::npos) continue;
    const std::size_t at = line.find("\"step\":");
    ASSERT_NE(at, std::string::npos) << line;
    steps.push_back(std::stoi(line.substr(at + 7)));
  }
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
}

}  // namespace
