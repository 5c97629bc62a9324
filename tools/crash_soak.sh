#!/usr/bin/env bash
# Crash soak: kill `adacc train` with SIGKILL at random moments and check that every kill
# leaves a run directory that resumes, and that the resumed runs end with exactly the
# files of an uninterrupted run.
#
#   1. An uninterrupted reference run, saving every step, into WORK/ref; its wall time D.
#      A resume of a copy of its final checkpoint (start-up, final validation and saves)
#      takes E.
#   2. A run into WORK/run, killed with `kill -9` after a delay drawn uniformly from
#      [0, 1.5 * (E + D * (S - s) / S)) when starting from step s of S (about the time the
#      attempt needs, and half as much again, so that about one in three finishes), so that
#      kills land before the first checkpoint, in steps, in checkpoint writes and in
#      the final save of model.safetensors; then resumed with --resume WORK/run --out WORK/run
#      and the same options, killed again, and so on. After each kill:
#        - with no checkpoint.json (nothing saved yet) the directory is removed and the
#          next attempt starts from scratch;
#        - otherwise a copy of it is resumed with --stop-after 0, which must succeed and
#          save again exactly the checkpoint it loaded (checkpoint.json and the files that
#          it names, byte for byte).
#      A resumed attempt that finishes before its kill ends a cycle; while fewer than
#      --kills kills have landed, a new cycle starts from scratch. After the last kill the
#      run is allowed to finish.
#   3. At the end of every cycle, model.safetensors, checkpoint.json and the final
#      checkpoint's model-S/optim-S files must equal the reference run's (cmp).
# Any failure exits 1 with one line saying what differed, and keeps WORK for inspection.
#
# Usage: tools/crash_soak.sh [options] [-- extra adacc train options]
#   --kills N        kills in all (default 30)
#   --steps S        training steps (default 40)
#   --model SPEC     model (default L=2,C=128,H=4,V=256,T=64)
#   --batch B        batch (default 4)
#   --seq T          sequence length (default 64)
#   --threads N      trainer threads (default 1)
#   --data FILE      training text (default: a generated corpus in WORK)
#   --binary PATH    the adacc binary (default: build/release/adacc of this checkout)
#   --seed N         seed of the kill delays (default: from the clock; printed)
#   --work DIR       work directory (default: a new one under ${TMPDIR:-/tmp}); must not exist
#   --keep           keep the work directory after a successful soak
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kills=30
steps=40
model=L=2,C=128,H=4,V=256,T=64
batch=4
seq=64
threads=1
data=
binary=$root/build/release/adacc
seed=
work=
keep=0
extra=()

usage() { sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] || { echo "crash_soak: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case $1 in
    --kills) need "$@"; kills=$2; shift 2 ;;
    --steps) need "$@"; steps=$2; shift 2 ;;
    --model) need "$@"; model=$2; shift 2 ;;
    --batch) need "$@"; batch=$2; shift 2 ;;
    --seq) need "$@"; seq=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --data) need "$@"; data=$2; shift 2 ;;
    --binary) need "$@"; binary=$2; shift 2 ;;
    --seed) need "$@"; seed=$2; shift 2 ;;
    --work) need "$@"; work=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "crash_soak: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in kills steps batch seq threads; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "crash_soak: --$v must be a whole number, got '${!v}'" >&2; exit 2; }
done
[ "$steps" -gt 0 ] || { echo "crash_soak: --steps must be positive" >&2; exit 2; }
[ -x "$binary" ] || { echo "crash_soak: no adacc binary at '$binary' (build it, or pass --binary)" >&2; exit 2; }
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
if [ -z "$seed" ]; then seed=$(( $(date +%s%N) % 1000000007 )); fi
[[ $seed =~ ^[0-9]+$ ]] || { echo "crash_soak: --seed must be a whole number, got '$seed'" >&2; exit 2; }
RANDOM=$seed

if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/crash_soak.XXXXXX")
else
  [ ! -e "$work" ] || { echo "crash_soak: --work '$work' exists; give a new directory" >&2; exit 2; }
  mkdir -p "$work"
  work=$(cd "$work" && pwd)
fi
ref=$work/ref
run=$work/run
check=$work/check
logs=$work/logs
mkdir -p "$logs"

child=
ok=0
cleanup() {
  if [ -n "$child" ]; then kill -9 "$child" 2>/dev/null || true; fi
  if [ "$ok" = 1 ] && [ "$keep" = 0 ]; then rm -rf "$work"; else echo "crash_soak: work directory kept: $work" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "crash_soak: FAIL: $*" >&2
  exit 1
}
# The last lines of a log, indented, for a failure message.
log_tail() { tail -n 5 "$1" | sed 's/^/    /' >&2; }

if [ -z "$data" ]; then
  data=$work/corpus.txt
  words=(the a model runs on every step and saves its state so that a crash loses nothing)
  for ((i = 0; i < 3000; i++)); do
    printf '%s %s %s. ' "${words[i % 17]}" "${words[(i * 7) % 17]}" "${words[(i * 13 + 5) % 17]}"
    if ((i % 9 == 8)); then echo; fi
  done > "$data"
fi
data=$(cd "$(dirname "$data")" && pwd)/$(basename "$data")

options=(--data "$data" --model "$model" --batch "$batch" --seq "$seq" --steps "$steps"
         --threads "$threads" --save-every 1 --log-every 1 "${extra[@]}")

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# The step of the checkpoint in directory $1 (empty without a checkpoint.json).
checkpoint_step() {
  [ -f "$1/checkpoint.json" ] || return 0
  sed -n 's/^ *"step": *\([0-9][0-9]*\).*/\1/p' "$1/checkpoint.json" | head -n 1
}
# The files a checkpoint.json names (its "model" and "optim" entries).
checkpoint_files() {
  sed -n 's/^ *"\(model\|optim\)": *"\([^"/]*\.safetensors\)".*/\2/p' "$1/checkpoint.json"
}
# The last step a metrics file records (0 if none).
last_metrics_step() {
  local s
  s=$(grep -o '"step":[0-9]*' "$1" 2>/dev/null | tail -n 1 | cut -d: -f2)
  echo "${s:-0}"
}
# Whether directories $1 and $2 hold the same checkpoint.json and files it names.
same_checkpoint() {
  local a=$1 b=$2 what=$3 f
  # The recorded options name each attempt's own metrics log; everything else must match.
  if ! cmp -s <(grep -v '"metrics":' "$a/checkpoint.json") <(grep -v '"metrics":' "$b/checkpoint.json"); then
    diff "$a/checkpoint.json" "$b/checkpoint.json" | head -n 12 | sed 's/^/    /' >&2 || true
    fail "$what: checkpoint.json differs: $a/checkpoint.json vs $b/checkpoint.json"
  fi
  for f in $(checkpoint_files "$a"); do
    [ -f "$b/$f" ] || fail "$what: $b/$f is missing (named by $a/checkpoint.json)"
    cmp -s "$a/$f" "$b/$f" || fail "$what: $f differs: $a/$f vs $b/$f"
  done
}

echo "crash_soak: $kills kills, --steps $steps --model $model --batch $batch --seq $seq" \
     "--threads $threads --seed $seed; binary $binary; work $work"

# 1. The reference run.
t0=$(now_ms)
"$binary" train "${options[@]}" --out "$ref" --metrics "$logs/ref.jsonl" > "$logs/ref.log" 2>&1 ||
  { log_tail "$logs/ref.log"; fail "the reference run failed (log: $logs/ref.log)"; }
ref_ms=$(( $(now_ms) - t0 ))
[ -f "$ref/model.safetensors" ] || fail "the reference run wrote no $ref/model.safetensors"
[ "$(checkpoint_step "$ref")" = "$steps" ] || fail "the reference checkpoint is not at step $steps"
echo "crash_soak: reference run: $steps steps in $ref_ms ms"
# The end: start-up, final validation and saves, measured as a resume of a copy of the
# reference's final checkpoint without its model.safetensors (which it must write again).
cp -a "$ref" "$work/end"
rm "$work/end/model.safetensors"
t0=$(now_ms)
"$binary" train "${options[@]}" --resume "$work/end" --out "$work/end" > "$logs/end.log" 2>&1 ||
  { log_tail "$logs/end.log"; fail "resuming the reference's final checkpoint failed (log: $logs/end.log)"; }
end_ms=$(( $(now_ms) - t0 ))
cmp -s "$ref/model.safetensors" "$work/end/model.safetensors" ||
  fail "resuming the reference's final checkpoint wrote another model.safetensors ($work/end)"
rm -rf "$work/end"
echo "crash_soak: resuming at the end: $end_ms ms"
# A finishing attempt that takes this long has hung.
hang_s=$(( ref_ms * 20 / 1000 + 60 ))

landed=0 attempt=0 cycle=1 cycles_done=0 cycle_kills=0
n_before=0 n_mid=0 n_after=0
n_startup=0 n_step=0 n_save=0 n_final=0 n_exit=0
max_attempts=$(( kills * 20 + 20 ))
while :; do
  attempt=$((attempt + 1))
  [ "$attempt" -le "$max_attempts" ] || fail "$max_attempts attempts without $kills kills landing"
  from=$(checkpoint_step "$run")
  if [ -n "$from" ]; then
    resume=(--resume "$run")
  else
    rm -rf "$run"
    resume=()
    from=0
  fi
  log=$logs/attempt-$attempt.log
  metrics=$logs/attempt-$attempt.jsonl

  if [ "$landed" -ge "$kills" ]; then
    # Done killing: let the run finish.
    rc=0
    timeout -s KILL "$hang_s" "$binary" train "${options[@]}" "${resume[@]}" --out "$run" \
      --metrics "$metrics" > "$log" 2>&1 || rc=$?
    if [ "$rc" = 137 ] || [ "$rc" = 124 ]; then
      fail "attempt $attempt hung (killed after ${hang_s}s; log: $log)"
    fi
  else
    # A delay drawn uniformly over what is left of the reference run's duration (and one
    # step more), so that resumed attempts are killed too and kills reach the final save.
    r=$(( (RANDOM << 15) | RANDOM ))
    delay_ms=$(( (end_ms + ref_ms * (steps - from) / steps) * 3 * r >> 31 ))
    "$binary" train "${options[@]}" "${resume[@]}" --out "$run" --metrics "$metrics" > "$log" 2>&1 &
    child=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -9 "$child" 2>/dev/null || true
    rc=0
    wait "$child" 2> /dev/null || rc=$?  # (no "Killed" notice from the shell)
    pid=$child
    child=
  fi

  if [ "$rc" = 137 ]; then
    # A kill landed: where?
    landed=$((landed + 1))
    cycle_kills=$((cycle_kills + 1))
    at=$(checkpoint_step "$run")
    done_step=$(last_metrics_step "$metrics")
    if [ -z "$at" ]; then
      phase="before the first checkpoint"; n_before=$((n_before + 1))
    elif [ "$at" = "$steps" ]; then
      phase="after the last step"; n_after=$((n_after + 1))
    else
      phase="mid-run"; n_mid=$((n_mid + 1))
    fi
    if [ "$done_step" = 0 ] || [ "$done_step" -le "$from" ]; then
      where="in startup (no step done)"; n_startup=$((n_startup + 1))
    elif [ "$done_step" -lt "$steps" ] && [ "$at" = "$done_step" ]; then
      where="in step $((done_step + 1))"; n_step=$((n_step + 1))
    elif [ "$done_step" -lt "$steps" ]; then
      where="in the save of step $done_step"; n_save=$((n_save + 1))
    elif [ "$at" != "$steps" ]; then
      where="in the final validation or checkpoint"; n_final=$((n_final + 1))
    elif [ ! -f "$run/model.safetensors" ] || compgen -G "$run/model.safetensors.tmp-$pid" > /dev/null; then
      where="in the final save of model.safetensors"; n_final=$((n_final + 1))
    else
      where="after model.safetensors was written"; n_exit=$((n_exit + 1))
    fi
    if compgen -G "$run/*.tmp-$pid" > /dev/null; then where="$where, mid-write"; fi
    echo "crash_soak: kill $landed (cycle $cycle, attempt $attempt from step $from," \
         "after ${delay_ms} ms): $phase, $where; checkpoint at step ${at:-none}"

    if [ -n "$at" ]; then
      # The directory must resume: a copy resumed with --stop-after 0 saves what it loaded.
      rm -rf "$check"
      cp -a "$run" "$check"
      "$binary" train "${options[@]}" --resume "$check" --out "$check" --stop-after 0 \
        > "$logs/check-$landed.log" 2>&1 ||
        { log_tail "$logs/check-$landed.log"
          fail "after kill $landed the directory does not resume (copy: $check; log: $logs/check-$landed.log)"; }
      same_checkpoint "$run" "$check" "after kill $landed, resuming and saving again"
      rm -rf "$check"
    fi
  elif [ "$rc" = 0 ]; then
    # The run finished: it must equal the reference, bit for bit.
    [ -f "$run/model.safetensors" ] || fail "attempt $attempt exited 0 but wrote no $run/model.safetensors"
    cmp -s "$ref/model.safetensors" "$run/model.safetensors" ||
      fail "cycle $cycle ($cycle_kills kills): $run/model.safetensors differs from $ref/model.safetensors"
    same_checkpoint "$ref" "$run" "cycle $cycle ($cycle_kills kills)"
    extra_files=$(comm -13 <(ls -A "$ref") <(ls -A "$run") | tr '\n' ' ')
    # A finished run leaves nothing behind that an uninterrupted one does not.
    [ -z "$extra_files" ] ||
      fail "cycle $cycle left files the reference run does not have: $extra_files"
    echo "crash_soak: cycle $cycle finished after $cycle_kills kills; bit-exact with the reference"
    cycles_done=$((cycles_done + 1))
    [ "$landed" -lt "$kills" ] || break
    rm -rf "$run"
    cycle=$((cycle + 1))
    cycle_kills=0
  else
    log_tail "$log"
    fail "attempt $attempt (from step $from) exited with status $rc (log: $log)"
  fi
done

echo "crash_soak: PASS: $landed kills in $cycles_done cycles ($attempt attempts), every cycle bit-exact."
echo "crash_soak: by checkpoint: $n_before before the first checkpoint, $n_mid mid-run, $n_after after the last step"
echo "crash_soak: by moment: $n_startup in startup, $n_step in a step, $n_save in a checkpoint save," \
     "$n_final in the final validation/saves, $n_exit after the final save"
ok=1
