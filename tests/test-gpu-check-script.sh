#!/bin/sh
# tools/gpu-check.sh on a machine without a GPU: it parses, reaches the GPU question and stops
# there with 77 and a clear line; the PyTorch peer (tools/bench-torch-gpu.py) compiles and shows
# its help; the table script turns fake bench outputs into the promised rows and ratios. SKIP (77)
# where a GPU is present (tools/gpu-check.sh then does the real work, not this test).
set -u
BUILD=${T3D_BUILDDIR:-.}
SRC=${T3D_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
PY=${T3D_PYTHON:-python3}
fail() { echo "FAIL: $*"; exit 1; }
gpus=$("$BUILD/t3d" devices --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["gpus"]))') \
  || fail "t3d devices --json"
if [ "$gpus" != 0 ]; then
  echo "SKIP: a GPU is present: run tools/gpu-check.sh itself"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-gpucheck.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
sh -n "$SRC/tools/gpu-check.sh" || fail "gpu-check.sh does not parse"
GPU_CHECK_BUILD="$BUILD" GPU_CHECK_MAKE=0 T3D_PYTHON="$PY" sh "$SRC/tools/gpu-check.sh" "$tmp/out" >"$tmp/log" 2>&1
rc=$?
cat "$tmp/log"
[ $rc = 77 ] || fail "gpu-check.sh without a GPU exited $rc, want 77"
grep -q "^no GPU check: " "$tmp/out/summary.txt" || fail "summary.txt does not say why nothing ran"
"$PY" -m py_compile "$SRC/tools/bench-torch-gpu.py" "$SRC/tools/gpu-check-table.py" || fail "py_compile"
"$PY" "$SRC/tools/bench-torch-gpu.py" --help >/dev/null || fail "bench-torch-gpu.py --help"

# the table from fake inputs: t3d fp32 and tf32 rows, PyTorch best modes
mkdir -p "$tmp/fake"
cat >"$tmp/fake/t3d-8x8x8-fp32.json" <<'J'
{"encoder": {"ms": 10.0, "gpu_peak_mib": 100, "backend": "cuda"}, "segment": {"ms": 20.0, "gpu_peak_mib": 200, "backend": "cuda"},
 "text": {"ms": 4.0, "gpu_peak_mib": 50, "backend": "cuda"}, "e2e": {"ms": 30.0, "gpu_peak_mib": 210, "backend": "cpu"}}
J
cat >"$tmp/fake/t3d-8x8x8-tf32.json" <<'J'
{"encoder": {"ms": 5.0, "gpu_peak_mib": 100, "backend": "cuda"}}
J
cat >"$tmp/fake/torch-8x8x8.json" <<'J'
{"info": {"gpu": "Fake GPU"}, "best": {"encoder": {"ms": 20.0, "mode": "bf16", "exec": "compile", "peak_mib": 400},
 "text": {"ms": 8.0, "mode": "tf32", "exec": "eager", "peak_mib": 100}}}
J
"$PY" "$SRC/tools/gpu-check-table.py" "$tmp/fake" 8,8,8 >"$tmp/table.md" || fail "gpu-check-table.py"
cat "$tmp/table.md"
grep -q "| 1x8x8x8 | encoder | 5.0 | tf32 | 100 | 20.0 | bf16 compile | 400 | 0.25 | 0.25 |" "$tmp/table.md" \
  || fail "encoder row: want t3d tf32 5.0 ms against PyTorch bf16 compile 20.0 ms"
grep -q "| 1x8x8x8 | BERT (256 tokens) | 4.0 | fp32 | 50 | 8.0 | tf32 eager | 100 | 0.50 | 0.50 |" "$tmp/table.md" \
  || fail "text row"
grep -q "end to end | 30.0 | fp32 (ran on cpu!)" "$tmp/table.md" || fail "a row that fell back to the CPU must say so"
grep -q "encoder + segmentation | 20.0 | fp32 | 200 | n/a" "$tmp/table.md" || fail "a row without PyTorch must show n/a"
echo "ok"
