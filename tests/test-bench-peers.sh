#!/bin/sh
# `t3d bench` peer rows on t3d-tiny at 32^3: OpenVINO f32 and bf16 and ONNX Runtime f32 must each
# give a row for encoder, encoder+segmentation and text, with the t3d row beside them, and every
# row must agree with PyTorch fp32 on the same input (cosine >= 0.9999 and max rel err <= 1e-3
# where f32 ran; cosine >= 0.99 where OpenVINO, or t3d, really ran bf16; the t3d rows say which they
# ran in). SKIP (77) without torch, monai,
# transformers, openvino or onnxruntime. Timings are not judged.
set -u
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
if ! "$PY" -c 'import torch, monai, transformers, openvino, onnxruntime' >/dev/null 2>&1; then
  echo "SKIP: $PY lacks torch, monai, transformers, openvino or onnxruntime (tools/requirements-test.txt)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$(T3D_PYTHON="$PY" "$BUILD/t3d" bench --config t3d-tiny --shape 32,32,32 --repeat 1 --cancel-after 0 \
  --threads 2 --no-torch --peers-json "$tmp/rows.json" 2>&1) || { echo "FAIL: t3d bench exited $?"; echo "$out"; exit 1; }
echo "$out"
for want in "OpenVINO .* f32 " "OpenVINO .* bf16" "ONNX Runtime .* f32 "; do
  for row in "encoder  " "encoder+segmentation" "text ("; do
    echo "$out" | grep -F "$row" | grep -q -- "$want" || { echo "FAIL: no '$want' line for row '$row' in the table"; exit 1; }
  done
done
"$PY" - "$tmp/rows.json" <<'PYEOF'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = 0
want = [(r, e, p) for r in ("encoder", "segment", "text")
        for e, p in (("t3d", None), ("openvino", "f32"), ("openvino", "bf16"), ("onnxruntime", "f32"))]
for r, e, p in want:
    got = [x for x in rows if x["row"] == r and x["engine"] == e and (p is None or x.get("asked") == p)]
    if not got:
        print("FAIL: no JSON row %s %s %s" % (r, e, p or ""))
        bad = 1
        continue
    x = got[0]
    if e == "t3d" and x.get("precision") not in ("f32", "bf16"):
        print("FAIL: the t3d row of %s does not say its precision (%r)" % (r, x.get("precision")))
        bad = 1
    # OpenVINO's "ran"; t3d's rows run bf16 where auto takes it (AMX, or a fast AVX512-BF16)
    bf16 = x.get("ran") == "bf16" or x.get("precision") == "bf16"
    cos_min, rel_max = (0.99, 0.05) if bf16 else (0.9999, 1e-3)
    cos, rel, ms = x.get("cosine"), x.get("max_rel_err"), x.get("ms")
    ok = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (cos, rel, ms))
    ok = ok and cos >= cos_min and rel <= rel_max and ms > 0
    print("%s %-8s %-12s %-5s ran %-5s ms %8.1f cosine %s (min %g) max rel err %s (max %g)"
          % ("ok  " if ok else "FAIL", r, e, p or "f32", x.get("ran", x.get("precision", "f32")), ms or float("nan"), cos, cos_min,
             rel, rel_max))
    bad |= not ok
sys.exit(bad)
PYEOF
