#!/bin/sh
# `--precision auto|fp32|bf16` on the command line: a wrong value is a usage error (exit 2) that
# names the choices, on analyze and on the commands that load the model through the shared
# loader; `t3d analyze --json` says what ran ("fp32", "bf16 (avx2)", ...), auto resolves as
# `t3d devices` reports (bf16 only where native bf16 outruns fp32), T3D_CPU_ISA=scalar caps the
# bf16 kernels, and the bf16 run agrees with fp32 (embedding cosine >= 0.9999). T3D_GEMM=t3d and
# T3D_GEMM=openblas pick the fp32 GEMM (t3d devices names it) and give the same findings.
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
"$T3D" devices --json >"$tmp/devices.json" || fail "t3d devices --json"
for g in t3d openblas; do
  T3D_GEMM=$g "$T3D" devices --json >"$tmp/devices-$g.json" || fail "T3D_GEMM=$g t3d devices --json"
  T3D_GEMM=$g "$T3D" analyze "$tmp/series" --model "$MODEL" --json --threads 2 --no-segment --precision fp32 \
    >"$tmp/gemm-$g.json" 2>"$tmp/gemm-$g.err" || fail "T3D_GEMM=$g analyze: $(cat "$tmp/gemm-$g.err")"
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
if b not in ("bf16 (amx)", "bf16 (avx512bf16)", "bf16 (avx512f)", "bf16 (avx2)", "bf16 (scalar)"):
    errors.append("bf16 run says %r" % b)
native = b in ("bf16 (amx)", "bf16 (avx512bf16)")
dev = json.load(open(d + "/devices.json"))
pays = dev["cpu_auto_precision"] != "fp32"
if pays and not native: errors.append("t3d devices says auto runs bf16, but bf16 ran %r" % b)
want_auto = {"fp32": "fp32", "bf16": b}.get(dev["cpu_auto_precision"])
if dev["cpu_auto_precision"] == "mixed":  # AMX: the linear layers alone
    if dev["cpu_auto_bf16_ops"] != ["linear"]: errors.append("auto's bf16 ops %r" % dev["cpu_auto_bf16_ops"])
    want_auto = b + " for the linear layers, fp32 for the rest"
# measured where the CPU has AVX512-BF16, so avx512bf16 has a gain; amx and the portable ISAs have
# none; avx512f has one (under 1.0: vdpbf16ps slower than the FMAs) or none (no AVX512-BF16)
gain = dev["cpu_bf16_gain"]
if (b == "bf16 (avx512bf16)" and not gain > 0) or (b not in ("bf16 (avx512bf16)", "bf16 (avx512f)") and gain != 0):
    errors.append("cpu_bf16_gain %r measured on %r" % (gain, b))
if gain > 0 and (gain < 1.0) != (b == "bf16 (avx512f)"):
    errors.append("vdpbf16ps at %.2fx the FMAs' rate, yet bf16 ran %r" % (gain, b))
engine = {"bf16 (amx)": "native", "bf16 (avx512bf16)": "native", "bf16 (avx512f)": "fp32 FMAs"}.get(b, "portable")
if dev.get("cpu_bf16_engine") != engine: errors.append("cpu_bf16_engine %r for %r" % (dev.get("cpu_bf16_engine"), b))
if r["auto"]["precision"] != want_auto:
    errors.append("auto ran %r, bf16 ran %r, t3d devices says auto runs %r" % (r["auto"]["precision"], b,
                                                                               dev["cpu_auto_precision"]))
print("auto: %s (bf16 gain %.2f)" % (r["auto"]["precision"], dev["cpu_bf16_gain"]))
g = {k: json.load(open("%s/devices-%s.json" % (d, k)))["cpu_kernels"] for k in ("t3d", "openblas")}
if "GEMMs: t3d sgemm" not in g["t3d"] and "im2col + t3d sgemm" not in g["t3d"]:
    errors.append("T3D_GEMM=t3d: kernels %r" % g["t3d"])
built_with_blas = "OpenBLAS" in dev["cpu_kernels"]
if built_with_blas and "OpenBLAS sgemm (" not in g["openblas"]:
    errors.append("T3D_GEMM=openblas: kernels %r" % g["openblas"])
print("fp32 GEMMs here: %s" % dev["cpu_kernels"].rsplit(": ", 1)[-1] if "GEMMs" in dev["cpu_kernels"] else dev["cpu_kernels"])
for k in ("t3d", "openblas"):
    gr = json.load(open("%s/gemm-%s.json" % (d, k)))
    diff = max(abs(x["probability"] - y["probability"]) for x, y in zip(gr["findings"], r["fp32"]["findings"]))
    if not diff <= 1e-4: errors.append("T3D_GEMM=%s: probabilities differ from the default run by %g" % (k, diff))
if r["scalar"]["precision"] != "bf16 (scalar)": errors.append("T3D_CPU_ISA=scalar ran %r" % r["scalar"]["precision"])
for k in ("bf16", "scalar"):
    a, e = r["fp32"]["embedding"], r[k]["embedding"]
    cos = sum(x * y for x, y in zip(a, e)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in e))
    print("%s: embedding cosine against fp32 %.7f" % (r[k]["precision"], cos))
    if not cos >= 0.9999: errors.append("%s embedding cosine %.7f < 0.9999" % (k, cos))
for e in errors: print(e)
sys.exit(1 if errors else 0)
PYEOF
grep -q "portable" "$tmp/bf16.err" || grep -q "slower than fp32 here" "$tmp/bf16.err" ||
  grep -q "no speed over fp32 here" "$tmp/bf16.err" ||
  grep -q '"cpu_auto_precision": "\(bf16\|mixed\)"' "$tmp/devices.json" ||
  fail "bf16 where it is slower than fp32 did not say so: $(cat "$tmp/bf16.err")"
echo "ok"
