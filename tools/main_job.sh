#!/usr/bin/env bash
# adacc's main job on a fresh Debian 12 machine: install what is needed, build, get the
# default corpus (the King James Bible, Debian package bible-kjv), print the memory plan
# (adacc's plan against every other policy), train the default model on it (byte-level
# tokens) under a hard memory budget, and end with the validation loss and a sample.
# Extra arguments are passed to `adacc train` (e.g. --steps 200 for a shorter run).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target adacc

mkdir -p data runs
if [ ! -s data/kjv.txt ]; then
  bible gen1:1-rev22:21 > data/kjv.txt.tmp
  mv data/kjv.txt.tmp data/kjv.txt
fi

model="L=4,C=256,H=4,V=256,T=256"
shape=(--batch 16 --seq 256)
# adacc chooses keep / compress / recompute per tensor by an exact MILP over costs measured
# on this machine (a profile of one block, cached), within 40% of none's activation memory:
# below what llmc (recompute GELU and LayerNorm outputs, ~72%) can reach.
memory=(--policy adacc --budget 40%)

# The memory plan: the chosen policy's predicted peak and step time against every other
# policy's (the baselines, checkmate: the same MILP without codecs).
build/release/adacc plan --model "$model" "${shape[@]}" "${memory[@]}"
echo

# --overwrite: running the main job again replaces its previous run in runs/kjv.
build/release/adacc train --data data/kjv.txt --model "$model" "${shape[@]}" "${memory[@]}" \
  --steps 1000 --lr 2e-3 --val-every 200 \
  --out runs/kjv --overwrite --metrics runs/kjv/metrics.jsonl --sample 400 "$@"
