#!/usr/bin/env bash
# Side-by-side: one GPT-2 training step (forward + backward + AdamW, fp32) in adacc and in
# PyTorch, run back-to-back per configuration so the speedup is measured in one run.
#
#   tools/compare/compare_step.sh        (from the repository root or anywhere)
#
# Assumes the release build exists (build/release/bench/train_step_bench; it does not
# build it) and Debian's PyTorch (apt-get install python3-torch; torch 1.13) under
# /usr/bin/python3. Both sides run with OMP_NUM_THREADS=2. adacc's ms/step is the median of
# its benchmark's timed steps (ms_step, read from --benchmark_out JSON, since the console
# shortens counters >= 1000 to "1.2k"); PyTorch's is pytorch_step.py's median_ms.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH="$ROOT/build/release/bench/train_step_bench"
PY=/usr/bin/python3
STEP_PY="$ROOT/tools/compare/pytorch_step.py"
export OMP_NUM_THREADS=2

[[ -x "$BENCH" ]] || { echo "missing $BENCH: build the release preset first" >&2; exit 1; }
"$PY" -c 'import torch' 2>/dev/null || { echo "no torch under $PY: apt-get install python3-torch" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# model  B  T  benchmark name
CONFIGS=("gpt2 4 64 gpt2_B4_T64" "gpt2-tiny 8 256 gpt2_tiny_B8_T256")
ROWS=()
for cfg in "${CONFIGS[@]}"; do
  read -r model B T name <<<"$cfg"
  echo "== $model B=$B T=$T"
  "$BENCH" --benchmark_filter="/$name/" --benchmark_out="$TMP/$name.json" \
      --benchmark_out_format=json | grep -E "ms_step=" || true
  ours=$("$PY" -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["benchmarks"][0]["ms_step"])' "$TMP/$name.json")
  line=$("$PY" "$STEP_PY" --model "$model" --batch "$B" --seq "$T")
  echo "$line"
  theirs=$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$line")
  ROWS+=("$model $B $T $ours $theirs")
done

echo
printf '%-10s %3s %5s %16s %18s %8s\n' model B T "adacc ms/step" "pytorch ms/step" speedup
for row in "${ROWS[@]}"; do
  read -r model B T ours theirs <<<"$row"
  printf '%-10s %3s %5s %16.2f %18.2f %7.2fx\n' "$model" "$B" "$T" "$ours" "$theirs" \
      "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { print b / a }')"
done
