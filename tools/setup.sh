#!/usr/bin/env bash
# Installs every Debian 12 package adacc needs to build, test and run. Idempotent and
# quiet when everything is already there; run as root (or with sudo available).
# `tools/setup.sh --list` prints the packages, one a line, and installs nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev            # oneDNN: sgemm (chosen by measurement, docs/matmul.md)
  ocl-icd-opencl-dev     # only a Recommends of libdnnl-dev, but its CMake config needs OpenCL
  libomp-dev             # OpenMP headers (the runtime used is GCC's libgomp)
  libgtest-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  coinor-libcbc-dev glpk-utils
  libsentencepiece-dev
  gnuplot-nox
  bible-kjv              # the default corpus: `bible gen1:1-rev22:21`
  clang-format clang-tidy  # tools/test.sh's format and tidy stages
  clang                  # the fuzz preset's libFuzzer targets (clang++)
  libclang-rt-dev        # clang's sanitizer and libFuzzer runtimes (only a Recommends of clang's deps)
)

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
