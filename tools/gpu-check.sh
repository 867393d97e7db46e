#!/bin/sh
# The GPU check of the CUDA backend in one call, for a machine with an NVIDIA GPU: builds t3d
# with CUDA, runs the GPU tests (every op against the CPU in fp32 and tf32, PyTorch parity of
# every op, end-to-end analyze parity, the fallback rule), the kernel workbenches, then
# `t3d bench --device cuda` (fp32 and tf32) at 1x160x224x224 and 1x128x128x128 beside
# tools/bench-torch-gpu.py on the same GPU, and writes logs plus a table (table.md) to OUT.
# Not a CI test: CI has no GPU. Where no GPU is usable it stops after the build, exit 77.
#
# Usage: tools/gpu-check.sh [OUT]      (OUT default: $OUT, else ./gpu-check-out)
# Environment:
#   GPU_CHECK_BUILD=DIR   use this already configured build folder (default: build _build-gpu), or
#                         the build/ folder of a bundle (tools/bundle.sh; with GPU_CHECK_MAKE=0):
#                         on a GPU machine without t3d's build dependencies
#   GPU_CHECK_MAKE=0      do not run make in GPU_CHECK_BUILD (it is up to date)
#   GPU_CHECK_SHAPES      default "160,224,224 128,128,128"
#   GPU_CHECK_REPEAT      timed runs per row (default 5)
#   GPU_CHECK_SKIP=...    any of: tests dev bench torch (space separated) to skip those parts
#   T3D_PYTHON            python with torch (CUDA build), monai, transformers (default python3)
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${OUT:-./gpu-check-out}}
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
py=${T3D_PYTHON:-python3}
shapes=${GPU_CHECK_SHAPES:-"160,224,224 128,128,128"}
repeat=${GPU_CHECK_REPEAT:-5}
skip=${GPU_CHECK_SKIP:-}
jobs=$(nproc 2>/dev/null || echo 2)
summary="$out/summary.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
skipped() { case " $skip " in *" $1 "*) return 0 ;; esac; return 1; }
status=0

say "gpu-check: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), source $src"
(cd "$src" && git log --oneline -1 2>/dev/null) | sed 's/^/commit: /' | tee -a "$summary"

# ---- build --------------------------------------------------------------------------------
if [ -n "${GPU_CHECK_BUILD:-}" ]; then
  build=$(cd "$GPU_CHECK_BUILD" && pwd) || exit 1
  say "build: reusing $build"
  if [ "${GPU_CHECK_MAKE:-1}" != 0 ]; then
    (cd "$build" && make -j"$jobs") >"$out/build.log" 2>&1 || { say "FAIL: make in $build (build.log)"; exit 1; }
  fi
else
  build="$src/_build-gpu"
  say "build: $build (log: build.log)"
  (
    [ -x "$src/configure" ] || (cd "$src" && autoreconf -fi) || exit 1
    mkdir -p "$build" && cd "$build" && { [ -f Makefile ] || "$src/configure"; } && make -j"$jobs"
  ) >"$out/build.log" 2>&1 || { say "FAIL: the build failed (tail of build.log below)"; tail -30 "$out/build.log"; exit 1; }
fi
t3d="$build/t3d"

# ---- is there a GPU? --------------------------------------------------------------------------
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >"$out/nvidia-smi.txt" 2>&1
"$t3d" devices --json >"$out/devices.json" 2>&1
gpus=$("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["gpus"]) if d["cuda_built"] else -1)' \
  "$out/devices.json" 2>/dev/null)
case "$gpus" in
-1) say "no GPU check: this build has no CUDA (configure found no toolkit; see build.log)"; exit 77 ;;
'' | 0) say "no GPU check: t3d finds no usable CUDA device: $("$t3d" devices | grep CUDA)"; exit 77 ;;
esac
say "GPU: $("$py" -c 'import json,sys; g=json.load(open(sys.argv[1]))["gpus"][0]; print("%s, compute %s, %.0f GiB" % (g["name"], g["compute"], g["memory_bytes"]/2**30))' "$out/devices.json")"

# ---- GPU tests ------------------------------------------------------------------------------------
if ! skipped tests; then
  tests="tests/test-devices.sh tests/test-cuda-ops.sh tests/test-ops-parity-cuda.sh tests/test-cuda-e2e.sh tests/test-cuda-fallback.sh"
  if [ -f "$build/Makefile" ]; then
    (cd "$build" && make check -j"$jobs" TESTS="$tests") >"$out/tests.log" 2>&1
    for t in $tests; do
      cp "$build/$(echo "$t" | sed 's/\.sh$/.log/')" "$out/" 2>/dev/null
    done
  else # a bundle (tools/bundle.sh): no make; the three GPU tests that need only t3d and the bundled
    # test programs run against its wrappers (test-devices and test-cuda-fallback need the build tree)
    : >"$out/tests.log"
    for t in tests/test-cuda-ops.sh tests/test-ops-parity-cuda.sh tests/test-cuda-e2e.sh; do
      log=$out/$(basename "$t" .sh).log
      (cd "$build" && T3D_BUILDDIR="$build" T3D_SRCDIR="$src" T3D_PYTHON="$py" sh "$src/$t") >"$log" 2>&1
      case $? in 0) r=PASS ;; 77) r=SKIP ;; *) r=FAIL ;; esac
      echo "$r: $t" >>"$out/tests.log"
    done
  fi
  grep -E '^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS):' "$out/tests.log" | tee -a "$summary"
  grep -qE '^(FAIL|ERROR):' "$out/tests.log" && status=1
fi

# ---- kernel workbenches -----------------------------------------------------------------------------
if ! skipped dev && [ ! -f "$build/Makefile" ]; then
  say "kernel workbenches: skipped (a bundle has no build tree to make them in)"
elif ! skipped dev; then
  (cd "$build" && make cuda-dev-run) >"$out/cuda-dev.log" 2>&1 || { say "FAIL: kernel workbenches (cuda-dev.log)"; status=1; }
  grep -E '^(ok|FAIL) ' "$out/cuda-dev.log" >>"$summary"
fi

# ---- benchmarks ------------------------------------------------------------------------------------
if ! skipped bench; then
  for shape in $shapes; do
    tag=$(echo "$shape" | tr , x)
    for prec in fp32 tf32; do
      say "t3d bench --device cuda --precision $prec --shape $shape"
      "$t3d" bench --device cuda --precision "$prec" --shape "$shape" --repeat "$repeat" --cancel-after 0 --json \
        >"$out/t3d-$tag-$prec.txt" 2>&1 || { say "FAIL: t3d bench ($prec, $shape)"; status=1; }
      grep '^{' "$out/t3d-$tag-$prec.txt" | tail -1 >"$out/t3d-$tag-$prec.json"
    done
    if ! skipped torch; then
      say "tools/bench-torch-gpu.py --shape $shape"
      "$py" "$src/tools/bench-torch-gpu.py" --config "$out/t3d-$tag-fp32.json" --shape "$shape" --repeat "$repeat" \
        --json "$out/torch-$tag.json" >"$out/torch-$tag.txt" 2>&1 || { say "FAIL: PyTorch peer ($shape), see torch-$tag.txt"; status=1; }
    fi
  done
  "$py" "$src/tools/gpu-check-table.py" "$out" $shapes >"$out/table.md" || status=1
  say "table: $out/table.md"
  cat "$out/table.md" | tee -a "$summary"
fi
say "gpu-check: done, status $status"
exit $status
