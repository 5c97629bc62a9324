#!/usr/bin/env bash
# Mutation check: do the tests catch the bugs they claim to catch?
#
# Plants each mutant of tools/mutants.txt (a small, plausible bug: a dropped term, a wrong
# bound, a skipped restore, an inverted mask) one at a time in a scratch copy of the
# working tree, rebuilds only the test programs the mutant names, runs them, and reports
# KILLED (a test failed or timed out), SURVIVED (every test passed: a bug the suite does
# not see), or DID NOT COMPILE (a defect of the list, not a kill). Mutants marked
# `equivalent:` in the list are not run and not counted.
#
#   build/mutation/src     the scratch copy (git's tracked and untracked, not ignored, files)
#   build/mutation/build   its one release build (configured once; reused with --keep)
#   build/mutation/logs    one log per mutant (build and test output), and report.txt
#
# The working tree is never written: the copy is synchronized from it at the start (only
# files whose content differs are copied, with a fresh mtime, so ninja rebuilds exactly
# those). Before any mutant runs, the unmutated copy must pass every selected test program:
# a mutant run against a failing baseline means nothing. Each mutant is restored (again
# with a fresh mtime, so that the next build recompiles the original) before the next one
# is applied, and on Ctrl-C or TERM.
#
# The build uses whatever compiler launcher the environment asks for
# (CMAKE_CXX_COMPILER_LAUNCHER=ccache in the environment makes the restores cheap); none
# is required. Exit status: 0 when every non-equivalent mutant was killed; 1 when one
# survived or did not compile; 2 for a bad command line or mutant list; 130 interrupted.
set -euo pipefail
shopt -s extglob

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
list=$root/tools/mutants.txt
work=$root/build/mutation
scratch=$work/src
bdir=$work/build
logs=$work/logs
jobs=$(nproc 2>/dev/null || echo 2)
keep=0
only=()
list_only=0

usage() {
  cat <<EOF
usage: tools/mutation_check.sh [--list] [--only ID...] [--keep] [--jobs N] [--help]

Plants the mutants of tools/mutants.txt one at a time in a scratch copy of this working
tree (build/mutation/), rebuilds the test programs each names, runs them and prints which
mutants the tests kill and which survive. The working tree itself is never modified.

  --list       print the mutants (id, file, test programs, description) and check that
               each one's original text occurs exactly once; build and run nothing
  --only ID... run only these mutants (the ids of --list)
  --keep       keep build/mutation/src and build/mutation/build afterwards, so that the
               next run reuses the build (only changed files are recompiled)
  --jobs N     build with N jobs (default: $jobs)
  --help       this text

The format of the list is described at the top of tools/mutants.txt. Logs of each mutant
(its build and test output) stay in build/mutation/logs/. Exit status: 0 when every
non-equivalent mutant was killed, 1 when one survived or did not compile, 2 for a bad
command line or list, 130 when interrupted.
EOF
}

die() {  # a usage or list error
  echo "mutation_check: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --list) list_only=1 ;;
    --keep) keep=1 ;;
    --jobs)
      [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive number"
      jobs=$2
      shift
      ;;
    --jobs=*)
      jobs=${1#--jobs=}
      [[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive number"
      ;;
    --only)
      shift
      while [ $# -gt 0 ] && [ "${1:0:2}" != "--" ]; do
        only+=("$1")
        shift
      done
      [ ${#only[@]} -gt 0 ] || die "--only needs at least one mutant id (see --list)"
      continue
      ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

# ---- the list ----

M_ID=() M_FILE=() M_TESTS=() M_FILTER=() M_ABOUT=() M_EQUIV=() M_ORIG=() M_REPL=()

parse_list() {
  [ -f "$list" ] || die "no mutant list at $list"
  local line lineno=0 n=-1 section=""
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    if [ -n "$section" ] && [ "${line:0:1}" = "|" ]; then
      if [ "$section" = original ]; then
        M_ORIG[n]+="${line:1}"$'\n'
      else
        M_REPL[n]+="${line:1}"$'\n'
      fi
      continue
    fi
    section=""
    line=${line%%+([[:space:]])}
    case "$line" in
      '' | '#'*) continue ;;
      '['*']')
        n=$((n + 1))
        M_ID[n]=${line:1:${#line}-2}
        M_FILE[n]="" M_TESTS[n]="" M_FILTER[n]="" M_ABOUT[n]="" M_EQUIV[n]="" M_ORIG[n]="" M_REPL[n]=""
        [[ ${M_ID[n]} =~ ^[a-z0-9][a-z0-9-]*$ ]] ||
          die "$list:$lineno: mutant id '${M_ID[n]}' must be lower-case letters, digits and '-'"
        ;;
      *)
        [ "$n" -ge 0 ] || die "$list:$lineno: '$line' before the first [id]"
        case "$line" in
          'file: '*) M_FILE[n]=${line#file: } ;;
          'tests: '*) M_TESTS[n]=${line#tests: } ;;
          'filter: '*) M_FILTER[n]=${line#filter: } ;;
          'about: '*) M_ABOUT[n]=${line#about: } ;;
          'equivalent: '*) M_EQUIV[n]=${line#equivalent: } ;;
          'original:') section=original ;;
          'replacement:') section=replacement ;;
          *) die "$list:$lineno: cannot read '$line' (see the format at the top of the list)" ;;
        esac
        ;;
    esac
  done <"$list"
  [ "$n" -ge 0 ] || die "$list has no mutants"
}

count_in() {  # count_in FILE TEXT: 0, 1 or 2 (two or more) occurrences of TEXT in FILE
  local content rest
  content=$(cat -- "$1"; printf x)
  content=${content%x}
  rest=${content#*"$2"}
  if [ "$rest" = "$content" ]; then
    echo 0
  elif [[ $rest == *"$2"* ]]; then
    echo 2
  else
    echo 1
  fi
}

check_mutant() {  # check_mutant N: the entry is complete and its original occurs exactly once
  local k=$1 id=${M_ID[$1]} seen
  for seen in "${M_ID[@]:0:k}"; do
    [ "$seen" != "$id" ] || die "mutant '$id' is listed twice"
  done
  [ -n "${M_FILE[k]}" ] || die "mutant '$id' has no 'file:'"
  [ -n "${M_TESTS[k]}" ] || die "mutant '$id' has no 'tests:'"
  [ -n "${M_ABOUT[k]}" ] || die "mutant '$id' has no 'about:'"
  [ -n "${M_ORIG[k]}" ] || die "mutant '$id' has no 'original:' text"
  [ "${M_ORIG[k]}" != "${M_REPL[k]}" ] || die "mutant '$id': the replacement equals the original"
  [ -f "$root/${M_FILE[k]}" ] || die "mutant '$id': no file ${M_FILE[k]}"
  case $(count_in "$root/${M_FILE[k]}" "${M_ORIG[k]}") in
    0) die "mutant '$id': its original text is not in ${M_FILE[k]} (the code moved: update the list)" ;;
    2) die "mutant '$id': its original text occurs more than once in ${M_FILE[k]} (quote more lines)" ;;
  esac
}

parse_list
selected=()
if [ ${#only[@]} -gt 0 ]; then
  for id in "${only[@]}"; do
    found=-1
    for k in "${!M_ID[@]}"; do [ "${M_ID[k]}" = "$id" ] && found=$k; done
    [ "$found" -ge 0 ] || die "no mutant '$id' in $list (see --list)"
    selected+=("$found")
  done
else
  selected=("${!M_ID[@]}")
fi
for k in "${!M_ID[@]}"; do check_mutant "$k"; done

if [ "$list_only" = 1 ]; then
  for k in "${selected[@]}"; do
    printf '%-34s %s\n' "${M_ID[k]}" "${M_FILE[k]}"
    printf '%-34s tests: %s%s\n' "" "${M_TESTS[k]}" "${M_FILTER[k]:+ (filter ${M_FILTER[k]})}"
    printf '%-34s %s\n' "" "${M_ABOUT[k]}"
    [ -z "${M_EQUIV[k]}" ] || printf '%-34s equivalent: %s\n' "" "${M_EQUIV[k]}"
  done
  echo "${#selected[@]} mutants; every original occurs exactly once"
  exit 0
fi

# ---- the scratch copy and its build ----

child=0             # process group of the running build or test (its own, for Ctrl-C)
applied=-1          # the mutant now planted in the scratch copy, -1 if none
applied_content=""  # the original content of its file

run_child() {  # run_child LOG COMMAND...: COMMAND's output appended to LOG; its exit status
  local log=$1 rc=0
  shift
  set -m
  "$@" >>"$log" 2>&1 </dev/null &
  child=$!
  set +m
  wait "$child" 2>/dev/null || rc=$?  # (no shell notice of a signal: the log says it)
  child=0
  [ "$rc" -le 128 ] || echo "(exit status $rc: killed by signal $((rc - 128)))" >>"$log"
  return "$rc"
}

restore() {  # put back the original of the planted mutant, with a fresh mtime
  [ "$applied" -ge 0 ] || return 0
  printf '%s' "$applied_content" >"$scratch/${M_FILE[applied]}"
  applied=-1
  applied_content=""
}

cleanup() {
  restore
  if [ "$keep" = 0 ]; then rm -rf "$scratch" "$bdir"; fi
}

on_signal() {
  trap - INT TERM
  if [ "$child" -gt 0 ]; then
    kill -TERM -- "-$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  cleanup
  echo "mutation_check: interrupted; the scratch copy is restored" >&2
  exit 130
}
trap on_signal INT TERM

sync_scratch() {  # make build/mutation/src equal the working tree, touching only what differs
  mkdir -p "$scratch" "$logs"
  local want=$work/want.sums have=$work/have.sums
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -r sha1sum 2>/dev/null) | LC_ALL=C sort -k2 >"$want" || true
  (cd "$scratch" && find . -type f -printf '%P\0' | xargs -0 -r sha1sum) |
    LC_ALL=C sort -k2 >"$have"
  # Paths to copy (new or changed) and to delete (gone from the working tree).
  awk 'FILENAME == ARGV[1] { have[substr($0, 43)] = $1; next }
       { p = substr($0, 43); if (have[p] != $1) printf "%s%c", p, 0 }' "$have" "$want" \
    >"$work/copy.list"
  awk 'FILENAME == ARGV[1] { want[substr($0, 43)] = 1; next }
       { p = substr($0, 43); if (!(p in want)) printf "%s%c", p, 0 }' "$want" "$have" \
    >"$work/delete.list"
  (cd "$scratch" && xargs -0 -r rm -f -- <"$work/delete.list")
  # --touch: copied files get a fresh mtime, newer than any object built from older content.
  tar -C "$root" --null -T "$work/copy.list" -cf - | tar -C "$scratch" --touch -xf -
  local copied
  copied=$(tr -cd '\0' <"$work/copy.list" | wc -c)
  echo "mutation_check: scratch copy in $scratch ($copied files copied)"
}

exe_of() {  # the path of a built test program
  local p
  for p in "$bdir/tests/$1" "$bdir/fuzz/$1" "$bdir/$1"; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

targets_of() {  # the build targets mutant N needs: its test programs (and adacc for cli_*)
  local t out=""
  for t in ${M_TESTS[$1]}; do
    out+=" $t"
    [[ $t == cli_* ]] && [[ $out != *" adacc"* ]] && out+=" adacc"
  done
  echo "$out"
}

declare -A base_s=()  # test program -> seconds the unmutated program took

run_program() {  # run_program PROGRAM LOG [FILTER]: 0 if it passes; sets FAILED_BY if not
  local t=$1 log=$2 filter=${3:-} exe limit begin rc=0
  exe=$(exe_of "$t") || { echo "no program $t in $bdir" >>"$log"; FAILED_BY="$t (missing)"; return 1; }
  limit=$((${base_s[$t]:-30} * 5 + 60))
  echo "== $t${filter:+ --gtest_filter=$filter} (time limit $limit s)" >>"$log"
  begin=$(date +%s)
  run_child "$log" env -C "$bdir/tests" OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE \
    timeout -k 10 "$limit" "$exe" --gtest_brief=1 ${filter:+"--gtest_filter=$filter"} || rc=$?
  [ -n "${base_s[$t]+x}" ] || base_s[$t]=$(($(date +%s) - begin))
  [ "$rc" -ne 0 ] || return 0
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then FAILED_BY="$t (timeout)"; else FAILED_BY=$t; fi
  return 1
}

run_tests() {  # run_tests N LOG: mutant N's programs in turn, stopping at the first that fails
  local t
  for t in ${M_TESTS[$1]}; do
    run_program "$t" "$2" "${M_FILTER[$1]}" || return 1
  done
  return 0
}

sync_scratch
if [ ! -f "$bdir/build.ninja" ]; then
  echo "mutation_check: configuring $bdir (release, no benchmarks, no CUDA)"
  cmake -S "$scratch" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DADACC_BUILD_BENCH=OFF \
    -DADACC_CUDA=OFF >"$logs/configure.log" 2>&1 ||
    { echo "mutation_check: configuring failed; see $logs/configure.log" >&2; cleanup; exit 1; }
fi

# The baseline: every selected mutant's programs, unmutated, must build and pass.
all_targets=""
all_tests=""
run_set=()
for k in "${selected[@]}"; do
  [ -z "${M_EQUIV[k]}" ] || continue
  run_set+=("$k")
  for t in $(targets_of "$k"); do [[ " $all_targets " == *" $t "* ]] || all_targets+=" $t"; done
done
start_all=$(date +%s)
if [ ${#run_set[@]} -gt 0 ]; then
  echo "mutation_check: building the unmutated copy:$all_targets"
  base_log=$logs/baseline.log
  : >"$base_log"
  # shellcheck disable=SC2086
  run_child "$base_log" cmake --build "$bdir" -j "$jobs" --target $all_targets ||
    { echo "mutation_check: the unmutated copy does not build; see $base_log" >&2; cleanup; exit 1; }
  echo "mutation_check: running the unmutated tests (each must pass)"
  for k in "${run_set[@]}"; do
    for t in ${M_TESTS[k]}; do
      [ -z "${base_s[$t]+x}" ] || continue
      # The whole program (a mutant's filter selects a subset of it).
      if ! run_program "$t" "$base_log"; then
        echo "mutation_check: the unmutated $FAILED_BY fails; fix the tree first (see $base_log)" >&2
        cleanup
        exit 1
      fi
      echo "  $t: passes in ${base_s[$t]} s"
    done
  done
fi
echo "mutation_check: baseline ready in $(($(date +%s) - start_all)) s"

# ---- the mutants ----

R_RESULT=()
R_SECONDS=()
killed=0 survived=0 broken=0 equivalent=0
for k in "${selected[@]}"; do
  id=${M_ID[k]}
  if [ -n "${M_EQUIV[k]}" ]; then
    R_RESULT[k]=EQUIVALENT
    R_SECONDS[k]=0
    equivalent=$((equivalent + 1))
    continue
  fi
  log=$logs/$id.log
  : >"$log"
  begin=$(date +%s)
  file=$scratch/${M_FILE[k]}
  content=$(cat -- "$file"; printf x)
  content=${content%x}
  [ "$(count_in "$file" "${M_ORIG[k]}")" = 1 ] ||
    die "mutant '$id': its original text does not occur exactly once in the scratch copy"
  applied_content=$content
  applied=$k
  printf '%s' "${content%%"${M_ORIG[k]}"*}${M_REPL[k]}${content#*"${M_ORIG[k]}"}" >"$file"
  printf 'mutant %s: %s\n' "$id" "${M_ABOUT[k]}" >>"$log"
  FAILED_BY=""
  # shellcheck disable=SC2046
  if ! run_child "$log" cmake --build "$bdir" -j "$jobs" --target $(targets_of "$k"); then
    R_RESULT[k]="DID NOT COMPILE"
    broken=$((broken + 1))
  elif run_tests "$k" "$log"; then
    R_RESULT[k]=SURVIVED
    survived=$((survived + 1))
  else
    R_RESULT[k]="KILLED by $FAILED_BY"
    killed=$((killed + 1))
  fi
  restore
  R_SECONDS[k]=$(($(date +%s) - begin))
  printf '  %-38s %-44s %4d s\n' "$id" "${R_RESULT[k]}" "${R_SECONDS[k]}"
done

# ---- the report ----

report=$logs/report.txt
{
  echo
  printf '%-38s %-44s %6s  %s\n' mutant result time description
  for k in "${selected[@]}"; do
    printf '%-38s %-44s %4d s  %s\n' "${M_ID[k]}" "${R_RESULT[k]}" "${R_SECONDS[k]}" "${M_ABOUT[k]}"
  done
  echo
  counted=$((killed + survived))
  if [ "$counted" -gt 0 ]; then
    echo "kill rate: $killed of $counted non-equivalent mutants that compiled" \
      "($((100 * killed / counted))%); $survived survived, $broken did not compile," \
      "$equivalent equivalent (not run)"
  else
    echo "kill rate: no mutant ran ($broken did not compile, $equivalent equivalent)"
  fi
  for k in "${selected[@]}"; do
    [ "${R_RESULT[k]}" != SURVIVED ] || echo "survived: ${M_ID[k]} (${M_FILE[k]}): ${M_ABOUT[k]}"
    [ "${R_RESULT[k]}" != "DID NOT COMPILE" ] ||
      echo "did not compile: ${M_ID[k]} (fix its entry; log: $logs/${M_ID[k]}.log)"
    [ "${R_RESULT[k]}" != EQUIVALENT ] || echo "equivalent: ${M_ID[k]}: ${M_EQUIV[k]}"
  done
  echo "total time: $(($(date +%s) - start_all)) s (logs: $logs)"
} | tee "$report"

cleanup
[ "$survived" -eq 0 ] && [ "$broken" -eq 0 ]
