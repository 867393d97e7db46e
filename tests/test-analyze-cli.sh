#!/bin/sh
# End to end: `t3d phantom-write` makes a CT series (oblique, so geometry mistakes show), then
# `t3d analyze --json --mask` runs the bundled t3d-tiny model on it. Checks the JSON fields
# (embedding of the config's size with unit norm, findings with probabilities in [0,1] or a
# stated reason, one volume per class), and that the mask has the series' size and exactly the
# geometry (sform/qform) of the series exported by `t3d volume --nifti`, with labels < classes.
# Then the trained model (models/t3d-tiny.safetensors, whose findings carry their held-out AUROC),
# on a `t3d phantom` case it finds familiar and on that series, which it flags as unlike its
# training cases: every finding below T3D_FINDING_MIN_AUROC (0.8), and every finding of a flagged
# series, is "assessed": false in the JSON and marked "not assessed" in the table, every other one
# neither; the phantom has some of each, the flagged series none assessed.
set -u
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
T3D="$BUILD/t3d"
MODEL="$BUILD/models/t3d-tiny-init.safetensors"
if ! "$PY" -c 'import json, gzip, struct' >/dev/null 2>&1; then
  echo "SKIP: no python3 to read the JSON and NIfTI output"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-analyze.XXXXXX") || exit 1
fail() { echo "FAIL: $*"; echo "kept $tmp"; exit 1; }
"$T3D" phantom-write "$tmp/series" --size 72,64,30 --spacing 0.9,0.95,3 --orientation oblique >/dev/null \
  || fail "phantom-write"
"$T3D" volume "$tmp/series" --nifti "$tmp/series.nii.gz" >/dev/null || fail "t3d volume --nifti"
"$T3D" analyze "$tmp/series" --model "$MODEL" --json --mask "$tmp/mask.nii.gz" --threads 2 >"$tmp/out.json" \
  || fail "t3d analyze exited $?"
"$T3D" analyze "$tmp/series" --model "$MODEL" --no-segment >"$tmp/text.txt" || fail "plain-text analyze"
grep -q "Timings" "$tmp/text.txt" || fail "text output lacks timings: $(cat "$tmp/text.txt")"
"$PY" - "$tmp/out.json" "$tmp/mask.nii.gz" "$tmp/series.nii.gz" <<'PYEOF' || fail "output checks"
import gzip, json, math, struct, sys
out = json.load(open(sys.argv[1]))
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
for key in ("series", "model", "embedding", "findings", "volumes_ml", "timings_ms", "mask"):
    need(key in out, "missing key %s" % key)
emb = out["embedding"]
need(len(emb) == 128, "embedding has %d values, t3d-tiny projects to 128" % len(emb))
norm = math.sqrt(sum(v * v for v in emb))
need(abs(norm - 1) < 1e-4, "embedding norm %.6f, expected 1" % norm)
if out["findings"]:
    for f in out["findings"]:
        need(0.0 <= f["probability"] <= 1.0, "finding %s probability %r outside [0,1]" % (f["name"], f["probability"]))
        need(f.get("heldout_auroc", 0) is None and f.get("assessed") is True,
             "finding %s of a model file without AUROC: heldout_auroc %r, assessed %r"
             % (f["name"], f.get("heldout_auroc", 0), f.get("assessed")))
else:
    need("findings_unavailable" in out, "no findings and no reason given")
vols = out["volumes_ml"]
need(len(vols) == 9, "expected 9 class volumes, got %d" % len(vols))
need(all(v >= 0 for v in vols.values()), "negative volume in %r" % vols)
for k in ("preprocess", "encoder", "decoder", "total"):
    need(out["timings_ms"].get(k, -1) >= 0, "timing %s missing" % k)

def nifti(path):
    raw = gzip.open(path).read()
    dim = struct.unpack("<8h", raw[40:56])
    dtype, bitpix = struct.unpack("<hh", raw[70:74])
    pixdim = struct.unpack("<8f", raw[76:108])
    off = int(struct.unpack("<f", raw[108:112])[0])
    srow = struct.unpack("<12f", raw[280:328])
    quat = struct.unpack("<6f", raw[256:280])
    n = dim[1] * dim[2] * dim[3]
    data = struct.unpack("<%df" % n, raw[off:off + 4 * n]) if dtype == 16 else None
    return dim[1:4], pixdim[1:4], srow, quat, data
md, mp, ms, mq, mdata = nifti(sys.argv[2])
sd, sp, ss, sq, _ = nifti(sys.argv[3])
sh = out["series"]["shape_xyz"]
need(list(md) == sh, "mask dims %r, series %r" % (md, sh))
need(list(md) == list(sd), "mask dims %r, exported series %r" % (md, sd))
need(all(abs(a - b) < 1e-5 for a, b in zip(mp, sp)), "mask spacing %r, series %r" % (mp, sp))
need(all(abs(a - b) < 1e-4 for a, b in zip(ms, ss)), "mask sform %r, series %r" % (ms, ss))
need(all(abs(a - b) < 1e-4 for a, b in zip(mq, sq)), "mask qform %r, series %r" % (mq, sq))
if mdata is None:
    errors.append("mask is not float32")
else:
    nc = len(vols)
    need(all(v == int(v) and 0 <= v < nc for v in mdata), "mask labels outside 0..%d" % (nc - 1))
    counts = [mdata.count(c) for c in range(nc)]
    vox_ml = sp[0] * sp[1] * sp[2] / 1000.0
    names = list(vols)
    for c in range(nc):
        need(abs(counts[c] * vox_ml - vols[names[c]]) < 1e-3 * max(1, vols[names[c]]),
             "class %s: mask holds %.3f mL, JSON says %.3f" % (names[c], counts[c] * vox_ml, vols[names[c]]))
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PYEOF
TRAINED=${T3D_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/models/t3d-tiny.safetensors
"$T3D" phantom --count 1 --seed 424242 --out "$tmp/phantom" --matrix 128 --slice 4 --quiet || fail "t3d phantom"
for s in phantom/case-00000/dicom series; do
  n=$(basename "$s")
  "$T3D" analyze "$tmp/$s" --model "$TRAINED" --no-segment --json >"$tmp/$n.json" || fail "trained model --json on $s"
  "$T3D" analyze "$tmp/$s" --model "$TRAINED" --no-segment >"$tmp/$n.txt" || fail "trained model, text, on $s"
  "$PY" - "$tmp/$n.json" "$tmp/$n.txt" "$n" <<'PYEOF' || fail "not assessed checks on $s: $(cat "$tmp/$n.txt")"
import json, sys
out = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()
errors, unassessed = [], 0
familiar = out.get("familiarity", {}).get("familiar", True)
for f in out["findings"]:
    a = f.get("heldout_auroc")
    if not isinstance(a, float) or not 0 < a <= 1:
        errors.append("%s: heldout_auroc %r (the trained model gives every finding one)" % (f["name"], a))
        continue
    row = [l for l in lines if l.startswith(f["name"] + " ")]
    if f["assessed"] != (a >= 0.8 and familiar):
        errors.append("%s: AUROC %.3f, familiar %r, but assessed %r" % (f["name"], a, familiar, f["assessed"]))
    if len(row) != 1 or ("not assessed" in row[0]) == f["assessed"] or ("%.2f" % a) not in row[0]:
        errors.append("%s: table row %r for AUROC %.3f" % (f["name"], row, a))
    unassessed += not f["assessed"]
if unassessed and not any(l.startswith("Not assessed:") for l in lines):
    errors.append("no line explaining \"not assessed\"")
if sys.argv[3] == "dicom" and (not familiar or not 0 < unassessed < len(out["findings"])):
    errors.append("the phantom: familiar %r, %d of %d not assessed" % (familiar, unassessed, len(out["findings"])))
if sys.argv[3] == "series" and (familiar or unassessed != len(out["findings"])):
    errors.append("the flagged series: familiar %r, %d of %d not assessed" % (familiar, unassessed, len(out["findings"])))
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PYEOF
done
rm -rf "$tmp"
exit 0
