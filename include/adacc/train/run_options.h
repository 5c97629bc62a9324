// The options of a training run as its checkpoint keeps them (checkpoint.json's
// "options": a JSON object keyed by flag name without the dashes), so that
// `adacc train --resume DIR` continues the run as it was started.
//
// Two kinds of options:
//  - those that define the run (data, sentencepiece, batch, seq, shuffle, seed,
//    val-fraction, schedule, lr, min-lr-fraction, warmup, weight-decay, grad-clip,
//    beta1, beta2, eps; and the model, which the checkpoint's config gives): a resumed
//    run takes them from the checkpoint, and a value that contradicts it is an error;
//  - those a resumed run may change (steps, attention, policy, budget, val-every,
//    val-batches, save-every, max-bad-steps, threads, metrics): taken from the checkpoint
//    unless given again. (Threads too: a different count can change the last bits of
//    reductions, so continuing bit-exactly needs the same count.)
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#include "adacc/model/config.h"
#include "adacc/train/trainer.h"

namespace adacc::train {

// The record of `o` for checkpoint.json (compact JSON); `config` is the run's model.
std::string run_options_json(const TrainOptions& o, const model::ModelConfig& config);

// Sets every option of the record in `saved_json` that `given` (flag names without
// dashes, as the user typed them) does not name. A record that is not a JSON object
// (checkpoints of older versions) sets nothing. A malformed value is a FormatError
// naming the checkpoint directory `dir`.
void inherit_run_options(TrainOptions& o, const std::set<std::string>& given,
                         std::string_view saved_json, const std::filesystem::path& dir);

// Throws InvalidArgument naming the first option that defines the run whose value in `o`
// differs from the record, with both values. Keys the record lacks are not checked.
void check_resume_options(const TrainOptions& o, std::string_view saved_json,
                          const std::filesystem::path& dir);

}  // namespace adacc::train
