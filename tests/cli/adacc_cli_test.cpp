// The adacc program end to end: help, a short training run with progress and a sample,
// and bad inputs, each a one-line error on stderr, exit code 1, and no output left behind.
#include "cli/cli_fixture.h"

namespace {

TEST_F(AdaccCli, HelpListsTheContractFlags) {
  const CommandResult r = adacc("train --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--init", "--data", "--batch", "--seq", "--steps", "--lr", "--seed",
                           "--schedule", "--weight-decay", "--grad-clip", "--shuffle", "--metrics",
                           "--threads", "--resume", "--budget"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(adacc("frobnicate").exit_code, 0);
}

TEST_F(AdaccCli, TrainsSavesAndSamples) {
  const fs::path data = write("corpus.txt", corpus());
  const CommandResult r =
      adacc("train --data " + data.string() + kTiny + " --steps 6 --val-batches 1 --out " +
            (dir_ / "run").string() + " --metrics " + (dir_ / "m.jsonl").string() + " --sample 20");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("step 6/6"), std::string::npos) << r.out;  // plain progress lines
  EXPECT_EQ(r.out.find('\r'), std::string::npos);                 // not a terminal
  EXPECT_NE(r.out.find("validation loss"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sample:"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir_ / "run" / "model.safetensors"));
  const CommandResult s = adacc("sample --model " + (dir_ / "run" / "model.safetensors").string() +
                                " --prompt In --tokens 10");
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(s.out.rfind("In", 0), 0u) << s.out;
  EXPECT_GE(s.out.size(), 12u);
}

TEST_F(AdaccCli, PlanPrintsPredictionsAndRejectsInfeasibleBudgets) {
  const std::string json = (dir_ / "full.json").string();
  const CommandResult r = adacc(
      "plan --model L=2,C=32,H=2,V=256,T=64 --batch 2 --seq 32 "
      "--policy full --table --threads 1 --out " +
      json);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* part : {"predicted peak", "none", "selective", "llmc", "every-2", "h0.fc.out"}) {
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
  }
  // The written plan is a valid --policy for training.
  const std::string data = write("corpus.txt", corpus()).string();
  const CommandResult t = adacc("train --data " + data +
                                " --model L=2,C=32,H=2,V=256,T=64 --batch 2 --seq 32 --steps 2 "
                                "--threads 1 --policy " +
                                json);
  EXPECT_EQ(t.exit_code, 0) << t.err;
  const CommandResult tight = adacc(
      "plan --model L=2,C=32,H=2,V=256,T=64 --batch 2 --seq 32 "
      "--policy none --threads 1 --budget 10%");
  EXPECT_EQ(tight.exit_code, 1);
  EXPECT_NE(tight.err.find("smallest feasible budget"), std::string::npos) << tight.err;
}

TEST_F(AdaccCli, CodecsTabulatesEveryRoleAndCodecOfATrainedModel) {
  const fs::path data = write("corpus.txt", corpus());
  ASSERT_EQ(adacc("train --data " + data.string() + kTiny + " --steps 2 --val-batches 1 --out " +
                  (dir_ / "run").string())
                .exit_code,
            0);
  const std::string init = (dir_ / "run" / "model.safetensors").string();
  const CommandResult r = adacc("codecs --init " + init + " --data " + data.string() +
                                " --batch 2 --seq 16 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* part : {"| norm_out | int4-g64 |", "| gelu_in | gelu-deriv-u8 |",
                           "| attn_probs | softmax-u8 |", "| residual | bf16 |", "dW err"}) {
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
  }
  const CommandResult one = adacc("codecs --init " + init + " --data " + data.string() +
                                  " --batch 2 --seq 16 --threads 1 --per-tensor --codecs bf16");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("| h0.fc.out | bf16 |"), std::string::npos) << one.out;
  EXPECT_EQ(one.out.find("int4"), std::string::npos) << one.out;
  const CommandResult list = adacc("codecs --list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  for (const char* part : {"int4-g64 ", "2 outliers per group", "gelu-deriv-u8", "roles: gelu_in",
                           "roles: attn_probs"}) {
    EXPECT_NE(list.out.find(part), std::string::npos) << part << "\n" << list.out;
  }
  // Errors: one line, exit 1.
  for (const std::string& args :
       {"codecs --data " + data.string(),
        "codecs --init " + (dir_ / "missing.safetensors").string() + " --data " + data.string(),
        "codecs --init " + init + " --data " + data.string() + " --codecs int3",
        "codecs --init " + init + " --data " + data.string() + " --seq 999"}) {
    const CommandResult e = adacc(args);
    EXPECT_EQ(e.exit_code, 1) << args << "\n" << e.err;
    EXPECT_EQ(std::count(e.err.begin(), e.err.end(), '\n'), 1) << e.err;
  }
}

TEST_F(AdaccCli, BadInputsAreOneLineErrors) {
  const std::string data = write("corpus.txt", corpus()).string();
  expect_error("train --data " + (dir_ / "missing.txt").string() + kTiny, "missing.txt");
  expect_error("train --data " + write("empty.txt", "").string() + kTiny, "empty.txt");
  std::string shard(1024, '\0');
  shard[0] = static_cast<char>(0x88);  // magic 20240520: an llm.c shard header whose
  shard[1] = static_cast<char>(0xD8);  // token count (100) promises more than the body
  shard[2] = 0x34;
  shard[3] = 0x01;
  shard[4] = 1;
  shard[8] = 100;
  expect_error("train --data " + write("short.bin", shard + "ab").string() + kTiny, "short.bin");
  expect_error("train --data " + data + " --model L=1,C=16,H=2,V=64,T=32 --batch 2 --seq 16",
               "vocabulary");
  expect_error("train --data " + data + kTiny + " --seq 64", "maximum");
  expect_error("train --data " + data + kTiny + " --budget 10KiB", "budget");
  expect_error("train --data " + data + kTiny + " --budget lots", "lots");
  expect_error("train --data " + data + kTiny + " --init " + write("t.safetensors", "xy").string(),
               "t.safetensors");
  expect_error("train --data " + data + kTiny + " --shuffle maybe", "shuffle");
  // A checkpoint of another shape: --init from a 1-layer model into a 2-layer one.
  const CommandResult made =
      adacc("train --data " + data + kTiny + " --steps 1 --out " + (dir_ / "small").string());
  ASSERT_EQ(made.exit_code, 0) << made.err;
  expect_error("train --data " + data +
                   " --model L=2,C=16,H=2,V=256,T=32 --batch 2 --seq 16 --init " +
                   (dir_ / "small" / "model.safetensors").string(),
               "transformer.h.1");
}

}  // namespace
