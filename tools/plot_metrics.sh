#!/usr/bin/env bash
# Plots a run's metrics (adacc train --metrics FILE) as a PNG: training loss per step
# and validation loss. Usage: tools/plot_metrics.sh METRICS.jsonl OUT.png [TITLE]
set -euo pipefail
metrics=$1 out=$2 title=${3:-training loss}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One "step value" pair per line; the key order inside each object does not matter.
grep -v -e val_loss -e '"event"' "$metrics" | sed -E 's/.*"loss":([^,}]*).*"step":([0-9]+).*/\2 \1/' > "$tmp/train"
grep val_loss "$metrics" | sed -E 's/.*"step":([0-9]+).*"val_loss":([^,}]*).*/\1 \2/' > "$tmp/val"
gnuplot <<GP
set terminal pngcairo size 800,480 noenhanced
set output "$out"
set title "$title"
set xlabel "step"
set ylabel "loss (nats per token)"
set grid
plot "$tmp/train" using 1:2 with lines lw 1 title "train", \
     "$tmp/val" using 1:2 with linespoints lw 2 pt 7 title "validation", \
     2.8 with lines dt 2 title "unigram level of English (2.8)"
GP
