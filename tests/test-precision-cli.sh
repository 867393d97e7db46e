#!/bin/sh
# `--precision auto|fp32|bf16` on the command line: a wrong value is a usage error (exit 2) that
# names the choices, on analyze and on the commands that load the model through the shared
# loader; `t3d analyze --json` says what ran ("fp32", "bf16 (avx2)", ...), auto resolves as the
# CPU backend documents (bf16 only with native bf16), T3D_CPU_ISA=scalar caps the bf16 kernels,
# and the bf16 run agrees with fp32 (embedding cosine >= 0.9999).
set -u
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
T3D="$BUILD/t3d"
MODEL="$BUILD/models/t3d-tiny-init.safetensors"
if ! "$PY" -c 'import json' >/dev/null 2>&1; then
  echo "SKIP: no python3 to read the JSON output"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-precision.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for cmd in analyze eval index report search similar bench; do
  "$T3D" "$cmd" --precision fp16 x >"$tmp/err" 2>&1
  rc=$?
  [ "$rc" = 2 ] || fail "t3d $cmd --precision fp16: exit $rc, want 2: $(cat "$tmp/err")"
  grep -q "auto, fp32 or bf16" "$tmp/err" || fail "t3d $cmd --precision fp16 does not name the choices: $(cat "$tmp/err")"
  "$T3D" "$cmd" --help 2>&1 | grep -q -- "--precision P" || fail "t3d $cmd --help lacks --precision"
done
"$T3D" phantom-write "$tmp/series" --size 48,40,20 --spacing 1,1,4 >/dev/null || fail "phantom-write"
for p in fp32 bf16 auto; do
  "$T3D" analyze "$tmp/series" --model "$MODEL" --json --threads 2 --no-segment --precision "$p" \
    >"$tmp/$p.json" 2>"$tmp/$p.err" || fail "analyze --precision $p: $(cat "$tmp/$p.err")"
done
T3D_CPU_ISA=scalar "$T3D" analyze "$tmp/series" --model "$MODEL" --json --threads 2 --no-segment --precision bf16 \
  >"$tmp/scalar.json" 2>/dev/null || fail "analyze --precision bf16 under T3D_CPU_ISA=scalar"
"$PY" - "$tmp" <<'PYEOF' || fail "output checks"
import json, math, sys
d = sys.argv[1]
r = {k: json.load(open("%s/%s.json" % (d, k))) for k in ("fp32", "bf16", "auto", "scalar")}
errors = []
if r["fp32"]["precision"] != "fp32": errors.append("fp32 run says %r" % r["fp32"]["precision"])
b = r["bf16"]["precision"]
if b not in ("bf16 (amx)", "bf16 (avx512bf16)", "bf16 (avx2)", "bf16 (scalar)"): errors.append("bf16 run says %r" % b)
native = b in ("bf16 (amx)", "bf16 (avx512bf16)")
if r["auto"]["precision"] != (b if native else "fp32"):
    errors.append("auto ran %r, bf16 ran %r" % (r["auto"]["precision"], b))
if r["scalar"]["precision"] != "bf16 (scalar)": errors.append("T3D_CPU_ISA=scalar ran %r" % r["scalar"]["precision"])
for k in ("bf16", "scalar"):
    a, e = r["fp32"]["embedding"], r[k]["embedding"]
    cos = sum(x * y for x, y in zip(a, e)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in e))
    print("%s: embedding cosine against fp32 %.7f" % (r[k]["precision"], cos))
    if not cos >= 0.9999: errors.append("%s embedding cosine %.7f < 0.9999" % (k, cos))
for e in errors: print(e)
sys.exit(1 if errors else 0)
PYEOF
grep -q "portable" "$tmp/bf16.err" || grep -q "bf16 (a" "$tmp/bf16.json" ||
  fail "bf16 without native support did not say it runs the portable path: $(cat "$tmp/bf16.err")"
echo "ok"
