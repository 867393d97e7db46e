#!/bin/sh
# End to end: `t3d eval` on a data set written by `t3d phantom` (fields and ranges), and on
# three tiny phantom-write series with a hand-written manifest, labels.json in an order unlike
# the model's and label volumes that are the model's own masks (`t3d analyze --mask`, renumbered).
# Checks the JSON fields and ranges (near chance with the random bundled model: quality is not
# tested), AUROC equal to one computed here from `t3d analyze` probabilities, Dice exactly 1
# (truth = prediction), --limit, the table, the progress bar, and errors naming the bad case.
set -u
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
T3D="$BUILD/t3d"
MODEL="$BUILD/models/t3d-tiny-init.safetensors"
if ! "$PY" -c 'import json, gzip, struct' >/dev/null 2>&1; then
  echo "SKIP: no python3 to write labels and read the JSON output"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-eval.XXXXXX") || exit 1
fail() { echo "FAIL: $*"; echo "kept $tmp"; exit 1; }
D="$tmp/data"
mkdir -p "$D"
for i in 0 1 2; do
  case $i in 0) o=axial ;; 1) o=oblique ;; 2) o=coronal ;; esac
  "$T3D" phantom-write "$D/case-0000$i/dicom" --seed $((i + 11)) --size 40,36,14 --orientation $o >/dev/null \
    || fail "phantom-write case $i"
  "$T3D" analyze "$D/case-0000$i/dicom" --model "$MODEL" --json --mask "$tmp/mask$i.nii.gz" --threads 2 \
    >"$tmp/analyze$i.json" || fail "t3d analyze case $i"
done
# A series whose grid differs from case 0 (shape; spacing) for the geometry errors.
"$T3D" phantom-write "$tmp/other-shape" --size 40,36,12 >/dev/null || fail "phantom-write other-shape"
"$T3D" analyze "$tmp/other-shape" --model "$MODEL" --mask "$tmp/mask-shape.nii.gz" >/dev/null || fail "analyze other"
"$T3D" phantom-write "$tmp/other-spacing" --size 40,36,14 --spacing 0.8,0.8,3 >/dev/null || fail "phantom-write sp"
"$T3D" analyze "$tmp/other-spacing" --model "$MODEL" --mask "$tmp/mask-sp.nii.gz" >/dev/null || fail "analyze sp"

"$PY" - "$tmp" "$D" <<'PYEOF' || fail "writing the data set"
import gzip, json, struct, sys
tmp, d = sys.argv[1], sys.argv[2]
model = ["background", "body", "lung", "heart", "liver", "spleen", "kidney", "bone", "lesion"]  # t3d-tiny's
labels = ["background", "lesion", "lung", "spleen", "kidney", "liver", "body", "heart", "bone", "vessel"]  # ids
json.dump({"classes": labels}, open(d + "/labels.json", "w"))
def renumber(src, dst):
    raw = bytearray(gzip.open(src).read())
    off = int(struct.unpack("<f", raw[108:112])[0])
    assert struct.unpack("<h", raw[70:72])[0] == 16, "float32 mask expected"
    n = (len(raw) - off) // 4
    vals = struct.unpack("<%df" % n, raw[off:off + 4 * n])
    new = [float(labels.index(model[int(v)])) for v in vals]
    raw[off:off + 4 * n] = struct.pack("<%df" % n, *new)
    gzip.open(dst, "wb").write(bytes(raw))
findings = ["pulmonary nodule", "pleural effusion", "pneumothorax", "consolidation", "emphysema",
            "cardiomegaly", "liver lesion", "renal cyst", "splenomegaly", "ascites", "lymphadenopathy"]
present = {"pulmonary nodule": [1, 0, 1], "pleural effusion": [0, 1, 1], "cardiomegaly": [1, 0, 0]}
reports = ["FINDINGS: 9 mm nodule in the right upper lobe. Enlarged heart.\nIMPRESSION: Nodule, cardiomegaly.",
           "FINDINGS: Small left pleural effusion.\nIMPRESSION: Effusion.",
           "FINDINGS: Nodule in the left lower lobe and bilateral effusions.\nIMPRESSION: Nodule, effusions."]
with open(d + "/manifest.jsonl", "w") as m:
    for i in range(3):
        name = "case-%05d" % i
        renumber("%s/mask%d.nii.gz" % (tmp, i), "%s/%s/labels.nii.gz" % (d, name))
        truth = {f: {"present": bool(present.get(f, [0, 0, 0])[i])} for f in findings}
        truth["unknown finding"] = {"present": True}
        m.write(json.dumps({"case": name, "seed": 11 + i, "series": name + "/dicom",
                            "labels": name + "/labels.nii.gz", "report": reports[i], "truth": truth}) + "\n")
PYEOF

"$T3D" eval --data "$D" --model "$MODEL" --json --threads 2 >"$tmp/eval.json" 2>"$tmp/eval.err" \
  || fail "t3d eval --json exited $?: $(cat "$tmp/eval.err")"
"$PY" - "$tmp" <<'PYEOF' || fail "JSON checks"
import json, sys
tmp = sys.argv[1]
out = json.load(open(tmp + "/eval.json"))
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
for key in ("macro_auroc", "auroc", "retrieval", "dice", "cases", "timings_ms", "auroc_skipped", "dice_cases"):
    need(key in out, "missing key %s" % key)
need(out["cases"] == 3, "cases %r, expected 3" % out["cases"])
# AUROC from t3d analyze's probabilities and the truth above, pairs with ties counted half
present = {"pulmonary nodule": [1, 0, 1], "pleural effusion": [0, 1, 1], "cardiomegaly": [1, 0, 0]}
probs = [{f["name"]: f["probability"] for f in json.load(open("%s/analyze%d.json" % (tmp, i)))["findings"]}
         for i in range(3)]
need(len(out["auroc"]) == 11, "auroc has %d findings, expected 11" % len(out["auroc"]))
for f, v in out["auroc"].items():
    y = present.get(f)
    if y is None:
        need(v is None, "%s has no positive case but AUROC %r" % (f, v))
        need(out["auroc_skipped"].get(f) == "no positive case", "%s skip reason %r" % (f, out["auroc_skipped"].get(f)))
        continue
    pos = [probs[i][f] for i in range(3) if y[i]]
    neg = [probs[i][f] for i in range(3) if not y[i]]
    want = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg) / (len(pos) * len(neg))
    need(v is not None and abs(v - want) < 1e-6, "%s AUROC %r, expected %r" % (f, v, want))
need(out["auroc_skipped"].get("unknown finding") == "not a finding of the model",
     "unknown finding not reported as skipped: %r" % out["auroc_skipped"])
ok = [out["auroc"][f] for f in present]
need(out["macro_auroc"] is not None and abs(out["macro_auroc"] - sum(ok) / 3) < 1e-9,
     "macro_auroc %r, expected the mean %r" % (out["macro_auroc"], sum(ok) / 3))
need(out["macro_auroc_findings"] == 3, "macro over %r findings, expected 3" % out["macro_auroc_findings"])
for d in ("t2v", "v2t"):
    r = out["retrieval"][d]
    need(all(0.0 <= r[k] <= 1.0 for k in ("r1", "r5", "r10")), "%s recall outside [0,1]: %r" % (d, r))
    need(r["r1"] <= r["r5"] <= r["r10"], "%s recall not monotone: %r" % (d, r))
    need(r["r5"] == 1.0 and r["r10"] == 1.0, "%s: with 3 cases R@5 and R@10 must be 1: %r" % (d, r))
need(sorted(out["dice"]) == ["body", "bone", "heart", "kidney", "lesion", "liver", "lung", "spleen"], "dice classes %r" % sorted(out["dice"]))
for c, v in out["dice"].items():
    n = out["dice_cases"][c]
    need(0 <= n <= 3, "dice_cases %s = %r" % (c, n))
    need((v == 1.0) if n else (v is None), "%s Dice %r over %d cases: truth = prediction gives 1 (null if absent)"
         % (c, v, n))
need(sum(out["dice_cases"].values()) > 0, "no class counted in any case")
need(out.get("dice_skipped") == {"vessel": "not a class of the model"}, "vessel (not a model class) not reported: %r" % out.get("dice_skipped"))
for k in ("total", "load", "analyze", "text", "per_case"):
    need(out["timings_ms"].get(k, -1) >= 0, "timing %s missing" % k)
if errors:
    print("\n".join(errors))
    sys.exit(1)
PYEOF

"$T3D" eval --data "$D" --model "$MODEL" --json --limit 2 --no-progress >"$tmp/limit.json" || fail "--limit 2"
"$PY" -c 'import json,sys; n=json.load(open(sys.argv[1]))["cases"]; sys.exit(n != 2 and print("cases", n) is None)' \
  "$tmp/limit.json" || fail "--limit 2 did not evaluate 2 cases"
"$T3D" eval --data "$D" --model "$MODEL" --progress >"$tmp/table.txt" 2>"$tmp/progress.txt" || fail "table run"
for word in "Macro AUROC" "R@10" "text -> volume" "Dice" "Timings"; do
  grep -q "$word" "$tmp/table.txt" || fail "table lacks '$word': $(cat "$tmp/table.txt")"
done
grep -q "ETA" "$tmp/progress.txt" && grep -q "case-00000 (1/3)" "$tmp/progress.txt" && grep -q "done in" "$tmp/progress.txt" \
  || fail "progress bar lacks ETA, case label or end: $(cat "$tmp/progress.txt")"

# A data set from `t3d phantom` itself (the generator's manifest, labels.json and uint8 label
# volumes, varied orientation and storage): loads, label grids match the series, fields in range.
"$T3D" phantom --count 3 --seed 424242 --out "$tmp/ph" --matrix 64 --slice 5 --quiet >/dev/null \
  || fail "t3d phantom"
"$T3D" eval --data "$tmp/ph" --model "$MODEL" --json --threads 2 >"$tmp/ph.json" 2>"$tmp/ph.err" \
  || fail "t3d eval on t3d phantom output exited $?: $(cat "$tmp/ph.err")"
"$PY" - "$tmp/ph.json" <<'PYEOF' || fail "JSON checks on t3d phantom data"
import json, sys
out = json.load(open(sys.argv[1]))
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
def unit(x):
    return x is not None and 0.0 <= x <= 1.0
need(out["cases"] == 3, "cases %r" % out["cases"])
need(len(out["auroc"]) == 11, "auroc for %d findings, expected 11" % len(out["auroc"]))
for f, v in out["auroc"].items():
    need(unit(v) or (v is None and f in out["auroc_skipped"]), "%s AUROC %r without a reason" % (f, v))
    need(0 <= out["positives"][f] <= 3, "%s positives %r" % (f, out["positives"][f]))
scored = [v for v in out["auroc"].values() if v is not None]
need((unit(out["macro_auroc"]) and out["macro_auroc_findings"] == len(scored)) if scored else out["macro_auroc"] is None,
     "macro_auroc %r over %r findings, %d scored" % (out["macro_auroc"], out["macro_auroc_findings"], len(scored)))
for d in ("t2v", "v2t"):
    r = out["retrieval"][d]
    need(all(unit(r[k]) for k in ("r1", "r5", "r10")) and r["r1"] <= r["r5"] <= r["r10"], "%s recall %r" % (d, r))
need(sorted(out["dice"]) == ["body", "bone", "heart", "kidney", "lesion", "liver", "lung", "spleen"], "dice classes %r" % sorted(out["dice"]))
for c, v in out["dice"].items():
    need(unit(v) if out["dice_cases"][c] else v is None, "%s Dice %r over %r cases" % (c, v, out["dice_cases"][c]))
need(sorted(out["dice_skipped"]) == [], "dice_skipped %r" % out["dice_skipped"])
h, npos = out["at_half"], sum(out["positives"].values())
need(h["case_findings"] == 3 * 11 and 0 <= h["false_negatives"] <= npos and
     0 <= h["false_positives"] <= 33 - npos and
     abs(h["accuracy"] * 33 - (33 - h["false_positives"] - h["false_negatives"])) < 1e-6,
     "at_half %r with %d positive case-findings" % (h, npos))
a = out["assessed"]  # the init model gives no held-out AUROC: every case-finding is assessed
need(a["not_assessed"] == 0 and all(a[k] == h[k] for k in h), "assessed %r, at_half %r" % (a, h))
if errors:
    print("\n".join(errors))
    sys.exit(1)
PYEOF
# The trained model (its findings carry their held-out AUROC) on the same phantoms: the
# case-findings it assesses are those its `t3d analyze --json` calls assessed, scored alone.
TRAINED=${T3D_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/models/t3d-tiny.safetensors
"$T3D" eval --data "$tmp/ph" --model "$TRAINED" --json --no-progress >"$tmp/ph-trained.json" || fail "trained model eval"
for i in 0 1 2; do
  "$T3D" analyze "$tmp/ph/case-0000$i/dicom" --model "$TRAINED" --no-segment --json >"$tmp/ph-a$i.json" \
    || fail "trained model analyze case $i"
done
"$PY" - "$tmp/ph-trained.json" "$tmp/ph/manifest.jsonl" "$tmp"/ph-a0.json "$tmp"/ph-a1.json "$tmp"/ph-a2.json <<'PYEOF' \
  || fail "assessed case-findings of the trained model"
import json, sys
out = json.load(open(sys.argv[1]))
truth = [json.loads(l)["truth"] for l in open(sys.argv[2])]
n = fp = fn = right = un = 0
for t, path in zip(truth, sys.argv[3:]):
    for f in json.load(open(path))["findings"]:
        if not f["assessed"]:
            un += 1
            continue
        said, pos = f["probability"] > 0.5, t[f["name"]]["present"]
        n, right, fp, fn = n + 1, right + (said == pos), fp + (said and not pos), fn + (pos and not said)
a = out["assessed"]
ok = (a["case_findings"], a["false_positives"], a["false_negatives"], a["not_assessed"]) == (n, fp, fn, un) and un > 0
ok = ok and (abs(a["accuracy"] - right / n) < 1e-9 if n else a["accuracy"] is None)
if not ok:
    print("assessed %r; from analyze: %d assessed (%d right, %d fp, %d fn), %d not" % (a, n, right, fp, fn, un))
sys.exit(0 if ok else 1)
PYEOF

# No labels.json: everything else is scored, segmentation is said to be unavailable.
rm -rf "$tmp/nolabels" && cp -r "$D" "$tmp/nolabels" && rm "$tmp/nolabels/labels.json"
"$T3D" eval --data "$tmp/nolabels" --model "$MODEL" --json --limit 2 >"$tmp/nolabels.json" || fail "no labels.json"
"$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); sys.exit(not (o["dice"] == {} and "labels.json" in o["dice_unavailable"] and o["retrieval"]["t2v"]["r1"] is not None))' \
  "$tmp/nolabels.json" || fail "without labels.json: $(cat "$tmp/nolabels.json")"

# Bad inputs: exit 1 and a message naming what is wrong and where.
expect_error() { # name, expected text, data dir
  "$T3D" eval --data "$3" --model "$MODEL" --no-progress >/dev/null 2>"$tmp/err.txt"
  rc=$?
  [ $rc -eq 1 ] || fail "$1: exit $rc, expected 1 ($(cat "$tmp/err.txt"))"
  grep -q -- "$2" "$tmp/err.txt" || fail "$1: message lacks '$2': $(cat "$tmp/err.txt")"
}
bad() { # copy of the data set with another manifest
  rm -rf "$tmp/bad" && cp -r "$D" "$tmp/bad"
}
bad && rm "$tmp/bad/manifest.jsonl"
expect_error "missing manifest" "manifest.jsonl: cannot open" "$tmp/bad"
bad && printf '{"case": "case-00009", "series":\n' >>"$tmp/bad/manifest.jsonl"
expect_error "malformed line" "manifest.jsonl line 4: malformed JSON" "$tmp/bad"
bad && rm -r "$tmp/bad/case-00001/dicom"
expect_error "missing series" "case case-00001 (manifest line 2)" "$tmp/bad"
bad && cp "$tmp/mask-shape.nii.gz" "$tmp/bad/case-00000/labels.nii.gz"
expect_error "label shape" "case case-00000 .*label volume is 40x36x12 voxels, the series 40x36x14" "$tmp/bad"
bad && cp "$tmp/mask-sp.nii.gz" "$tmp/bad/case-00000/labels.nii.gz"
expect_error "label geometry" "case case-00000 .*label geometry does not match the series" "$tmp/bad"
bad && printf '{"classes": ["background", 3]}' >"$tmp/bad/labels.json"
expect_error "corrupt labels.json" "labels.json: class 1 is not a string" "$tmp/bad"
"$T3D" eval --model "$MODEL" >/dev/null 2>&1
[ $? -eq 2 ] || fail "eval without --data must be a usage error (2)"

rm -rf "$tmp"
echo "PASS: t3d eval on t3d phantom data; JSON, AUROC cross-check, Dice, --limit, table, progress and 6 bad inputs"
