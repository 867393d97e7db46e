#!/bin/sh
# End-to-end parity of the CUDA backend: `t3d analyze` of a phantom series on the CPU and on the
# GPU (fp32) give embeddings within 1e-4 (max |gpu - cpu| / max |cpu|), the same findings'
# probabilities within 1e-4, and the same label on at least 99.9% of the mask's voxels (a voxel
# whose two best classes are within rounding may flip). The GPU run must not fall back (no
# note). Both runs are fp32: without --precision the CPU run takes auto, which is bf16 where the
# CPU has AMX (a GPU machine's host may), and this test then failed by bf16's rounding (embedding
# 1.2e-3 and 8.9e-3 off, labels 99.94 % and 99.76 % equal) on the first H200 host. SKIP (77)
# without a usable GPU.
set -u
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
T3D="$BUILD/t3d"
SRC=${T3D_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
MODEL=${T3D_E2E_MODEL:-$SRC/models/t3d-tiny.safetensors}  # the trained model: meaningful labels
[ -f "$MODEL" ] || MODEL="$BUILD/models/t3d-tiny-init.safetensors"
if ! "$PY" -c 'import json, gzip' >/dev/null 2>&1; then
  echo "SKIP: no python3 to compare the outputs"
  exit 77
fi
unset T3D_CUDA_FORCE_FAIL T3D_DEVICE
gpus=$("$T3D" devices --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["gpus"]))' 2>/dev/null)
if [ "${gpus:-0}" = 0 ]; then
  echo "SKIP: no usable CUDA device (t3d devices --json lists none)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-cuda-e2e.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
"$T3D" phantom-write "$tmp/series" --size 96,96,40 >/dev/null || fail "phantom-write"
for dev in cpu cuda; do
  "$T3D" analyze "$tmp/series" --model "$MODEL" --json --mask "$tmp/$dev.nii.gz" --device $dev --precision fp32 \
    >"$tmp/$dev.json" 2>"$tmp/$dev.err" || { cat "$tmp/$dev.err"; fail "analyze --device $dev"; }
done
if grep -q "t3d: note:" "$tmp/cuda.err"; then
  fail "the GPU run fell back to the CPU: $(cat "$tmp/cuda.err")"
fi
"$PY" - "$tmp/cpu.json" "$tmp/cuda.json" "$tmp/cpu.nii.gz" "$tmp/cuda.nii.gz" <<'PYEOF'
import gzip, json, struct, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
bad = []
ea, eb = a["embedding"], b["embedding"]
diffs = [abs(x - y) for x, y in zip(ea, eb)]
rel = float("nan") if any(d != d for d in diffs) else max(diffs, default=0.0) / max(max(abs(x) for x in ea), 1e-30)
print("embedding: rel %.3g over %d values (want <= 1e-4)" % (rel, len(ea)))
if len(ea) != len(eb) or not rel <= 1e-4:
    bad.append("embedding rel %.3g" % rel)
for fa, fb in zip(a["findings"], b["findings"]):
    d = abs(fa["probability"] - fb["probability"])
    if fa["name"] != fb["name"] or not d <= 1e-4:
        bad.append("finding %s: cpu %.6f gpu %.6f" % (fa["name"], fa["probability"], fb["probability"]))
ma, mb = gzip.open(sys.argv[3]).read(), gzip.open(sys.argv[4]).read()
off = int(struct.unpack("<f", ma[108:112])[0])  # vox_offset
la, lb = ma[off:], mb[off:]
same = sum(1 for x, y in zip(la, lb) if x == y)
frac = same / max(len(la), 1)
print("labels: %d of %d voxels equal (%.5f, want >= 0.999)" % (same, len(la), frac))
if len(la) != len(lb) or frac < 0.999:
    bad.append("labels equal on %.5f" % frac)
if bad:
    sys.exit("FAIL: " + "; ".join(bad))
PYEOF
