#!/usr/bin/env bash
# Plots how a run's memory plan evolved (adacc train --metrics FILE, docs/evolution.md)
# beside its loss: the top panel is the share of the saved activations' bytes that the plan
# keeps, recomputes and compresses with each codec, against the step (from the "plan"
# events: one at the start, one after each re-plan); the bottom panel is the training and
# validation loss. Usage: tools/plot_evolution.sh METRICS.jsonl OUT.png [TITLE]
set -euo pipefail
metrics=$1 out=$2 title=${3:-plan and loss}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
last_step=$(grep -v '"event"' "$metrics" | grep -v val_loss |
  sed -E 's/.*"step":([0-9]+).*/\1/' | tail -n 1)
[ -n "$last_step" ] || { echo "plot_evolution: no steps in $metrics" >&2; exit 1; }
# "plan" events -> one row per event: step, then the share of each category (columns in the
# order first seen), the last plan repeated at the last step.
grep '"event":"plan"' "$metrics" | awk -v last="$last_step" '
  {
    line = $0; gsub(/[{}"]/, "", line); n = split(line, kv, ",")
    step = 0; total = 0; delete row
    for (i = 1; i <= n; ++i) {
      split(kv[i], p, ":")
      if (p[1] == "event") continue
      if (p[1] == "step") { step = p[2]; continue }
      if (!(p[1] in col)) { col[p[1]] = ++ncol; name[ncol] = p[1] }
      row[p[1]] = p[2]; total += p[2]
    }
    steps[++nrows] = step
    for (c in row) val[nrows, col[c]] = total > 0 ? row[c] / total : 0
  }
  END {
    printf "step"; for (c = 1; c <= ncol; ++c) printf " %s", name[c]; printf "\n"
    for (r = 1; r <= nrows; ++r) {
      printf "%s", steps[r]; for (c = 1; c <= ncol; ++c) printf " %g", val[r, c] + 0; printf "\n"
    }
    printf "%s", last; for (c = 1; c <= ncol; ++c) printf " %g", val[nrows, c] + 0; printf "\n"
  }' > "$tmp/plan"
[ "$(wc -l < "$tmp/plan")" -gt 2 ] || { echo "plot_evolution: no plan events in $metrics (run with --evolve on or --budget-file)" >&2; exit 1; }
ncols=$(head -n 1 "$tmp/plan" | wc -w)
grep -v -e val_loss -e '"event"' "$metrics" |
  sed -E 's/.*"loss":([^,}]*).*"step":([0-9]+).*/\2 \1/' > "$tmp/train"
grep val_loss "$metrics" | sed -E 's/.*"step":([0-9]+).*"val_loss":([^,}]*).*/\1 \2/' > "$tmp/val" || true
gnuplot <<GP
set terminal pngcairo size 900,700 noenhanced
set output "$out"
set multiplot layout 2,1 title "$title"
set xlabel "step"
set ylabel "share of saved activation bytes"
set yrange [0:1]
set key outside right
set grid
plot for [c=2:$ncols] "$tmp/plan" using 1:c with steps lw 2 title columnheader(c)
set yrange [*:*]
set ylabel "loss (nats per token)"
plot "$tmp/train" using 1:2 with lines lw 1 title "train", \
     "$tmp/val" using 1:2 with linespoints lw 2 pt 7 title "validation"
unset multiplot
GP
