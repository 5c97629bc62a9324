// Step profiles on disk: one JSON file per profile, keyed by what the measurements depend
// on — the model's shape without its depth (C, H, V, maxT: any L maps onto the one
// profiled block), batch, seq, threads, attention kind, the CPU model and the adacc
// version. A profile is only used for the key it was measured with: loading one whose key
// differs from the one asked for is an error naming every differing field.
//
// The file (docs/profiling.md):
//   {"format": "adacc-profile", "format_version": 1,
//    "key": {"n_embd", "n_head", "vocab", "max_seq", "batch", "seq", "threads",
//            "attention", "cpu_model", "adacc_version"},
//    "measured": {"warmup", "steps", "codec_repeats", "seed", "tokens": "random"|"data",
//                 "budget": bytes or null (none), "peak_bytes", "seconds"},
//    "ops": [{"name", "kind", "forward_seconds", "backward_seconds"}, ...],
//    "tensors": [{"name", "role", "bytes", "codecs": [{"codec", "encoded_bytes",
//                 "encode_seconds", "decode_seconds", "tensor_error", "grad_error",
//                 "weight_grad_error"}, ...]}, ...]}
// Numbers that are not finite (an infinite relative error) are written as the strings
// "inf", "-inf" and "nan".
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "adacc/model/config.h"
#include "adacc/runtime/step_profile.h"

namespace adacc::plan {

struct ProfileKey {
  int n_embd = 0, n_head = 0, vocab = 0, max_seq = 0;
  int batch = 0, seq = 0, threads = 0;
  std::string attention;  // "flash" or "naive"
  std::string cpu_model;
  std::string adacc_version;

  bool operator==(const ProfileKey&) const = default;
};

// The key of a run of `config` (its n_layer is ignored) at batch x seq with `threads`
// threads (resolved as Context::resolve_threads) on this machine with this build.
ProfileKey profile_key(const model::ModelConfig& config, int batch, int seq, int threads);
// The key of a profile measured on this machine with this build.
ProfileKey profile_key(const runtime::StepProfile& profile);

// "threads=2, this run uses threads=4" for each differing field, in key order; empty if
// the keys are equal.
std::vector<std::string> key_mismatches(const ProfileKey& measured, const ProfileKey& wanted);

// The "model name" of /proc/cpuinfo's text (the first one), or "unknown".
std::string cpu_model_from_cpuinfo(std::string_view cpuinfo);
// This machine's: cpu_model_from_cpuinfo of /proc/cpuinfo.
std::string this_cpu_model();
// The version of this build (the project version, e.g. "0.1.0").
std::string adacc_version();

struct StoredProfile {
  ProfileKey key;
  runtime::StepProfile profile;
};

std::string profile_to_json(const ProfileKey& key, const runtime::StepProfile& profile);
// Throws FormatError naming `source` (a file name) and the first bad field.
StoredProfile profile_from_json(std::string_view text, std::string_view source);

// Writes the file atomically (a temporary file renamed over `path`; the parent directory
// is created). Throws BackendError naming the file if the OS refuses.
void save_profile(const std::filesystem::path& path, const ProfileKey& key,
                  const runtime::StepProfile& profile);
// Reads a profile file, whatever its key. Throws InvalidArgument if it cannot be read,
// FormatError if it is malformed.
StoredProfile read_profile(const std::filesystem::path& path);
// read_profile, then InvalidArgument unless its key equals `wanted`, naming each
// mismatching field: "profile FILE was measured with threads=2, this run uses threads=4;
// re-run adacc profile".
runtime::StepProfile load_profile(const std::filesystem::path& path, const ProfileKey& wanted);

// Where a profile of `key` is cached by default: $XDG_CACHE_HOME/adacc/profile-<hash>.json,
// else $HOME/.cache/adacc/profile-<hash>.json, <hash> 16 hex digits of the whole key.
std::filesystem::path default_profile_path(const ProfileKey& key);

}  // namespace adacc::plan
