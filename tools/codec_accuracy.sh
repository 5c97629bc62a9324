#!/usr/bin/env bash
# The codec accuracy run of docs/codecs.md: train gpt2-tiny's shape (L=6 C=384 H=6) with
# byte tokens on the King James Bible for 600 steps (B=8, T=128, naive attention so that
# softmax probabilities exist) from the same seed under `none` and each compress policy,
# and print the final validation losses side by side. Needs a release build and
# data/kjv.txt (tools/main_job.sh makes both).
#   tools/codec_accuracy.sh [policy ...]     (default: none, compress, every uniform codec)
# Results: runs/codec_accuracy/<policy>/ (checkpoint, metrics.jsonl, log) and
# runs/codec_accuracy/summary.tsv. ADACC_THREADS=N sets the threads per run (default:
# all cores); ADACC_SEED=S another seed (results then go to runs/codec_accuracy/seed-S/). The binary is copied first, so rebuilding during the runs changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

adacc=build/release/adacc
[ -x "$adacc" ] || { echo "codec_accuracy: build first (cmake --build --preset release)" >&2; exit 1; }
[ -s data/kjv.txt ] || { echo "codec_accuracy: data/kjv.txt missing (run tools/main_job.sh)" >&2; exit 1; }

policies=("$@")
if [ ${#policies[@]} -eq 0 ]; then
  policies=(none compress-int4-g64 compress-int4-g64-naive compress compress-bf16
            compress-fp8-e4m3 compress-int8-g64 compress-int2-g64 compress-softmax-u8
            compress-gelu-deriv-u8)
fi

seed=${ADACC_SEED:-1337}
out=runs/codec_accuracy
[ "$seed" = 1337 ] || out=$out/seed-$seed
mkdir -p "$out"
cp "$adacc" "$out/adacc.$$"
adacc=$out/adacc.$$
trap 'rm -f "$adacc"' EXIT
summary=$out/summary.tsv
[ -s "$summary" ] || printf 'policy\tfinal_train_loss\tval_loss\tpeak_MiB\tseconds\n' > "$summary"
for p in "${policies[@]}"; do
  dir=$out/$p
  rm -rf "$dir"
  mkdir -p "$dir"
  start=$(date +%s)
  "$adacc" train --data data/kjv.txt --model "L=6,C=384,H=6,V=256,T=128" --batch 8 --seq 128 \
    --steps 600 --lr 2e-3 --seed "$seed" --attention naive --val-every 0 --val-batches 32 \
    --threads "${ADACC_THREADS:-0}" \
    --policy "$p" --out "$dir/ckpt" --metrics "$dir/metrics.jsonl" > "$dir/log" 2>&1
  secs=$(( $(date +%s) - start ))
  line=$(grep '^done:' "$dir/log")
  train=$(sed -E 's/.*last loss ([0-9.]+).*/\1/' <<<"$line")
  val=$(sed -E 's/.*validation loss ([0-9.]+).*/\1/' <<<"$line")
  peak=$(sed -E 's/.*peak memory ([0-9.]+) MiB.*/\1/' <<<"$line")
  printf '%s\t%s\t%s\t%s\t%s\n' "$p" "$train" "$val" "$peak" "$secs" | tee -a "$summary"
done
