#!/usr/bin/env bash
# The GPU check, in two halves:
#
#   tools/device_check.sh pack   here: build the CUDA test and benchmark (nvcc 13, sm_90),
#                                 gather them and their non-system shared libraries into
#                                 build/device.tar.xz (the device machine has none of
#                                 Debian's libraries and installs nothing)
#   tools/device_check.sh run    on a GPU machine, with build/device.tar.xz copied there:
#                                 unpack, then run the CUDA codec tests (every codec against
#                                 the CPU, byte for byte) and the GPU codec benchmark beside a
#                                 device-to-device copy; logs go to $OUT, a short table last.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  pack)
    cmake --preset release >/dev/null
    cmake --build --preset release --target cuda_codecs_test cuda_codec_bench
    grep -q "ADACC_HAVE_CUDA:INTERNAL=ON\|adacc_compress_cuda.dir/src/compress/cuda/codec_kernels.cu" \
      build/release/CMakeCache.txt build/release/build.ninja 2>/dev/null ||
      { echo "device_check: this build has no CUDA kernels (is nvcc on PATH?)" >&2; exit 1; }
    rm -rf build/device && mkdir -p build/device/lib
    bins=(build/release/tests/cuda_codecs_test build/release/bench/cuda_codec_bench)
    cp "${bins[@]}" build/device/
    # Non-system libraries (the device has its own, newer libc/libstdc++).
    ldd "${bins[@]}" | awk '/=> \//{print $3}' | sort -u |
      grep -Ev '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
      xargs -r cp -L -t build/device/lib/
    tar -C build -cJf build/device.tar.xz device
    ls -la build/device.tar.xz
    ;;
  run)
    out=${OUT:-/tmp/device_out}
    mkdir -p "$out"
    [ -s build/device.tar.xz ] || { echo "device_check: carry build/device.tar.xz (pack first)" >&2; exit 1; }
    work=$(mktemp -d)
    tar -C "$work" -xJf build/device.tar.xz
    export LD_LIBRARY_PATH="$work/device/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
    status=0
    "$work/device/cuda_codecs_test" --gtest_brief=1 > "$out/test.log" 2>&1 || status=$?
    tail -n 15 "$out/test.log"
    "$work/device/cuda_codec_bench" --benchmark_out="$out/bench.json" --benchmark_out_format=json \
      > "$out/bench.log" 2>&1 || status=$?
    # The short table: codec, encode and decode GB/s, their ratio to a device copy.
    grep BM_ "$out/bench.log" | sed -E 's/ +/ /g' |
      awk '{name=$1; sub("BM_CudaCodec/","",name); sub("/iterations.*","",name); line=name;
            for (i=2;i<=NF;i++) if ($i ~ /=/) line=line" "$i; print line}' | tee "$out/table.txt"
    exit $status
    ;;
  *)
    echo "usage: tools/device_check.sh pack|run" >&2
    exit 2
    ;;
esac
