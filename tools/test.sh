#!/usr/bin/env bash
# adacc's one test command (the README's, and exactly what CI's .ci/run calls). In order,
# stopping at the first stage that fails (exit code non-zero):
#   setup    tools/setup.sh: the Debian packages (quiet when they are there)
#   release  configure, build and test the release preset
#   asan     the same under AddressSanitizer + UndefinedBehaviorSanitizer (the asan preset)
#   fuzz     build the libFuzzer targets (clang) when CMakePresets.json has a fuzz preset
#   format   clang-format --dry-run --Werror over every C++ file of the repository
#   tidy     clang-tidy (the repository's .clang-tidy) over every src/ .cpp, any warning fails
# Each stage prints one timing line; works from any current directory.
# `tools/test.sh format tidy` runs only the stages named (in the order above).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

jobs=$(nproc 2>/dev/null || echo 2)
start_all=$(date +%s)

stage() {  # stage NAME COMMAND...: run it, print its time, exit non-zero if it fails
  local name=$1 begin rc=0
  shift
  begin=$(date +%s)
  echo "test.sh: == $name"
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "test.sh: $name FAILED (exit $rc) after $(($(date +%s) - begin)) s" >&2
    exit "$rc"
  fi
  echo "test.sh: $name ok in $(($(date +%s) - begin)) s"
}

preset() {  # configure, build and test one preset
  cmake --preset "$1" >/dev/null && cmake --build --preset "$1" && ctest --preset "$1"
}

fuzz_build() {
  if ! cmake --list-presets=configure 2>/dev/null | grep -q '"fuzz"'; then
    echo "test.sh: no fuzz preset in CMakePresets.json; nothing to build"
    return 0
  fi
  cmake --preset fuzz >/dev/null && cmake --build --preset fuzz
}

cxx_files() {  # every C++ source and header of the repository (build folders are not in these)
  local dirs=() d
  for d in src include tests bench fuzz tools; do [ -d "$d" ] && dirs+=("$d"); done
  find "${dirs[@]}" -type f \( -name '*.cpp' -o -name '*.cc' -o -name '*.h' -o -name '*.hpp' \
    -o -name '*.cu' -o -name '*.cuh' \) -print0 | sort -z
}

format_check() {
  cxx_files | xargs -0 clang-format --dry-run --Werror
}

tidy_check() {
  local db=build/release/compile_commands.json
  [ -f "$db" ] || { echo "test.sh: $db missing (the release stage writes it)" >&2; return 1; }
  # A source this configuration does not compile (codec_kernels_absent.cpp when nvcc is
  # found) gets the flags of its nearest neighbour in the database, as clang-tidy does.
  find src -type f -name '*.cpp' -print0 | sort -z |
    xargs -0 -n 1 -P "$jobs" clang-tidy -p build/release --quiet --warnings-as-errors='*'
}

main() {
  local all=(setup release asan fuzz format tidy) chosen=("$@") name
  [ ${#chosen[@]} -gt 0 ] || chosen=("${all[@]}")
  for name in "${chosen[@]}"; do
    case " ${all[*]} " in
      *" $name "*) ;;
      *) echo "test.sh: unknown stage '$name' (stages: ${all[*]})" >&2; exit 2 ;;
    esac
  done
  for name in "${all[@]}"; do
    case " ${chosen[*]} " in *" $name "*) ;; *) continue ;; esac
    case "$name" in
      setup) stage setup tools/setup.sh ;;
      release) stage release preset release ;;
      asan) stage asan preset asan ;;
      fuzz) stage fuzz fuzz_build ;;
      format) stage format format_check ;;
      tidy) stage tidy tidy_check ;;
    esac
  done
  echo "test.sh: ${chosen[*]}: ok in $(($(date +%s) - start_all)) s"
}

# The whole script is read before anything runs, so editing it during a run is safe.
main "$@"
exit
