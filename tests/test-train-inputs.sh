#!/bin/sh
# Training inputs are inference inputs: the trainer reads the cache `t3d preprocess` writes from
# the DICOM series; after 2 training steps the exported model run by `t3d analyze` on each series
# must give the embedding PyTorch computes on the cached tensor (cosine > 0.99999) and the same
# zero-shot logits (so tokenizer and text tower agree too); the exported model and the cache open
# with safetensors.safe_open. The linear probes (train/probe.py: vision, text and histogram towers, and
# the vision tower on jittered inputs) run on the
# same run and score every finding of the manifest (AUROC in [0, 1], or null where a class is missing);
# with --seg-from 0.5 the segmentation loss is off for the first half of the steps and on after.
# `python -m train.export --calibrate` writes the same tensors plus the familiarity reference (the
# training cases' embeddings, [N, D], and a threshold in t3d.calibration); `t3d analyze --json`
# with it finds each training series at nearest cosine > 0.99999 and calls it familiar. With
# --calibrate-holdout the threshold comes from those cases instead (here the training cases
# themselves, so it is their own cosine, 1, above the leave-one-out one), and --calibrate-findings
# fits each finding's probability on them (t3d analyze then reports the calibrated probability).
# train.attribute on a series gives analyze's logit differences, and its attributions sum to them.
# SKIP (77) without torch, monai, transformers, safetensors.
set -u
. "$(dirname "$0")/train-common.sh"
# the bundled model's config (train/recipes/t3d-tiny.json): the embedding reads the class histograms
# of the model's own segmentation, so analyze's decoder-then-projection path and the export's folding
# of their standardisation are what the embedding comparison checks
TRAIN_CONFIG="$SRC/train/recipes/t3d-tiny.json"
status=0
train_setup 3 || train_finish 1
# shellcheck disable=SC2046
"$PY" -m train.train $(train_args "$tmp/run") --steps 2 --batch 2 --w-seg 1 --log-every 1 \
  --export "$tmp/run/model.safetensors" || train_finish 1
"$PY" -m train.checks inputs "$tmp/data" "$tmp/cache.safetensors" "$tmp/run" "$T3D" || status=1
# the familiarity reference (analyze at fp32 throughout: the references are PyTorch's fp32)
"$PY" -m train.export --ckpt "$tmp/run/final.pt" --template "$tmp/init.safetensors" --calibrate "$tmp/cache.safetensors" \
  --calibrate-data "$tmp/data" --threads 1 -o "$tmp/calibrated.safetensors" || status=1
for d in "$tmp"/data/case-*; do
  "$T3D" analyze "$d/dicom" --model "$tmp/calibrated.safetensors" --json --no-segment --threads 1 --precision fp32 \
    > "$tmp/familiar-${d##*/}.json" || status=1
done
"$PY" -m train.export --ckpt "$tmp/run/final.pt" --template "$tmp/init.safetensors" --calibrate "$tmp/cache.safetensors" \
  --calibrate-data "$tmp/data" --calibrate-holdout "$tmp/cache.safetensors" --calibrate-holdout-data "$tmp/data" \
  --calibrate-findings --threads 1 -o "$tmp/calibrated-holdout.safetensors" || status=1
d1=$(ls -d "$tmp"/data/case-* | head -n 1)
"$T3D" analyze "$d1/dicom" --model "$tmp/calibrated-holdout.safetensors" --json --no-segment --threads 1 --precision fp32 \
  > "$tmp/findings-calibrated.json" || status=1
# --calibrate-findings: every finding whose truth is mixed over the held-out cases carries a slope >= 0
# and an intercept, and t3d analyze reports sigmoid(slope * (logit_pos - logit_neg) + intercept) for it
"$PY" - "$tmp/calibrated-holdout.safetensors" "$tmp/findings-calibrated.json" "$tmp/data/manifest.jsonl" <<'EOF' || status=1
import json, math, sys
from safetensors import safe_open
fl = json.loads(safe_open(sys.argv[1], "np").metadata()["t3d.findings"])
res = {f["name"]: f for f in json.load(open(sys.argv[2]))["findings"]}
truth = [json.loads(line)["truth"] for line in open(sys.argv[3])]
bad, n = [], 0
for f in fl:
    given = [t.get(f["name"], {}).get("present") for t in truth]
    mixed = None not in given and len(set(given)) == 2
    c = f.get("calibration")
    if bool(c) != mixed or (c and not (c["slope"] >= 0 and math.isfinite(c["intercept"]))):
        bad.append(f"{f['name']}: calibration {c}, truth mixed {mixed}")
        continue
    if c:
        n += 1
        r = res[f["name"]]
        want = 1 / (1 + math.exp(-(c["slope"] * (r["logit_positive"] - r["logit_negative"]) + c["intercept"])))
        if abs(r["probability"] - want) > 1e-6:
            bad.append(f"{f['name']}: analyze {r['probability']:.8f}, calibration gives {want:.8f}")
ok = not bad and n > 0
print(("ok   " if ok else "FAIL ") + f"--calibrate-findings: {n} of {len(fl)} findings calibrated " + "; ".join(bad))
sys.exit(0 if ok else 1)
EOF
"$PY" - "$tmp/calibrated.safetensors" "$tmp/calibrated-holdout.safetensors" <<'EOF' || status=1
import json, sys
from safetensors import safe_open
loo, held = (json.loads(safe_open(p, "np").metadata()["t3d.calibration"]) for p in sys.argv[1:3])
ok = (loo["threshold_from"] == "leave-one-out" and held["threshold_from"].startswith("3 held-out cases") and
      held["threshold"] > 0.99999 and held["threshold"] > loo["threshold"])
print(("ok   " if ok else "FAIL ") + f"threshold leave-one-out {loo['threshold']:.6f}, from held-out cases "
      f"{held['threshold']:.6f} ({held['threshold_from']})")
sys.exit(0 if ok else 1)
EOF
"$PY" - "$tmp/run/model.safetensors" "$tmp/calibrated.safetensors" "$tmp"/familiar-*.json <<'EOF' || status=1
import json, sys
from safetensors import safe_open
import numpy as np
plain, calib = (safe_open(p, "np") for p in sys.argv[1:3])
meta = json.loads(calib.metadata()["t3d.calibration"])
ref = calib.get_tensor("calib.reference")
same = set(calib.keys()) - {"calib.reference"} == set(plain.keys()) and all(
    np.array_equal(plain.get_tensor(k), calib.get_tensor(k)) for k in plain.keys())
runs = [json.load(open(p)) for p in sys.argv[3:]]
fam = [r.get("familiarity", {}) for r in runs]
ok = (same and ref.shape[0] == meta["cases"] == len(runs) and -1 <= meta["threshold"] <= 1 and
      all(f.get("familiar") is True and f["nearest_training_cosine"] > 0.99999 for f in fam))
print(("ok   " if ok else "FAIL ") + f"calibrated export: same tensors {same}, reference {ref.shape}, "
      f"threshold {meta['threshold']:.4f}, nearest cosines {[round(f.get('nearest_training_cosine', 0), 6) for f in fam]}")
sys.exit(0 if ok else 1)
EOF
# train.attribute: on a training series, each finding's logit difference is the one `t3d analyze`
# (fp32) reported, and the integrated gradients sum to its distance from the baseline (completeness)
"$PY" -m train.attribute --model "$tmp/calibrated-holdout.safetensors" --series "$d1/dicom" --t3d "$T3D" \
  --baseline-cache "$tmp/cache.safetensors" --baseline-data "$tmp/data" --threads 1 --json "$tmp/attr.json" \
  > /dev/null || status=1
"$PY" - "$tmp/attr.json" "$tmp/findings-calibrated.json" <<'EOF' || status=1
import json, sys
att = json.load(open(sys.argv[1]))
res = {f["name"]: f["logit_positive"] - f["logit_negative"] for f in json.load(open(sys.argv[2]))["findings"]}
bad = [a["finding"] for a in att
       if abs(a["logit_difference"] - res[a["finding"]]) > 1e-3 * max(1, abs(res[a["finding"]]))
       or abs(a["attribution_sum"] - (a["logit_difference"] - a["baseline_logit_difference"]))
       > 0.01 * (1 + abs(a["logit_difference"] - a["baseline_logit_difference"]))]
ok = len(att) == len(res) and not bad
print(("ok   " if ok else "FAIL ") + f"train.attribute: {len(att)} findings, logit differences as analyze's, "
      f"attributions complete (wrong: {bad})")
sys.exit(0 if ok else 1)
EOF
# --drop-technique: the reports lose their TECHNIQUE line and nothing else
"$PY" - <<'EOF' || status=1
import sys
from train.data import drop_technique
body = "FINDINGS:\nSmall left pleural effusion.\nIMPRESSION:\nPleural effusion, left."
d = drop_technique("TECHNIQUE: CT of the chest without intravenous contrast.\n" + body)
ok = d == body and drop_technique(body) == body
print(("ok   " if ok else "FAIL ") + "drop_technique removes the TECHNIQUE line only")
sys.exit(0 if ok else 1)
EOF
# --seg-from 0.5: the decoder joins half-way (steps 3-4 of 4 carry Dice + cross-entropy, 1-2 none)
# shellcheck disable=SC2046
"$PY" -m train.train $(train_args "$tmp/segfrom") --steps 4 --batch 2 --w-seg 1 --seg-from 0.5 --log-every 1 \
  2> /dev/null || status=1
"$PY" - "$tmp/segfrom/metrics.csv" <<'EOF' || status=1
import csv, sys
seg = [float(r["seg"]) for r in csv.DictReader(open(sys.argv[1]))]
ok = len(seg) == 4 and seg[0] == seg[1] == 0.0 and seg[2] > 0.0 and seg[3] > 0.0
print(("ok   " if ok else "FAIL ") + f"--seg-from 0.5: Dice + CE per step {seg}")
sys.exit(0 if ok else 1)
EOF
# train.prompts: every finding's chosen pair comes from its candidates (or is the current pair) and
# scores at least the current pair's AUROC on these cases
"$PY" -m train.prompts --ckpt "$tmp/run/final.pt" --template "$tmp/init.safetensors" --cache "$tmp/cache.safetensors" \
  --data "$tmp/data" --findings "$SRC/train/recipes/findings.json" --candidates "$SRC/train/recipes/prompt-candidates.json" \
  --threads 1 -o "$tmp/findings-selected.json" > "$tmp/prompts.log" || status=1
"$PY" - "$SRC/train/recipes/findings.json" "$SRC/train/recipes/prompt-candidates.json" "$tmp/findings-selected.json" \
  "$tmp/prompts.log" <<'EOF' || status=1
import json, sys
old, cand, new = (json.load(open(p)) for p in sys.argv[1:4])
bad = [n["name"] for o, n in zip(old, new)
       if n["name"] != o["name"] or n["positive"] not in cand.get(o["name"], {}).get("positive", []) + [o["positive"]]
       or n["negative"] not in cand.get(o["name"], {}).get("negative", []) + [o["negative"]]]
scored = [line.split() for line in open(sys.argv[4]) if " -> " in line]
worse = [s for s in scored if float(s[s.index("->") + 1]) < float(s[s.index("->") - 1])]
ok = len(new) == len(old) and not bad and bool(scored) and not worse
print(("ok   " if ok else "FAIL ") + f"train.prompts picks candidate pairs for {len(new)} findings "
      f"({len(scored)} scored, none worse than the current pair; wrong: {bad})")
sys.exit(0 if ok else 1)
EOF
for tower in vision text histogram histogram-labels histogram-predicted "vision --jitter 0.1"; do
  # shellcheck disable=SC2086
  "$PY" -m train.probe --template "$tmp/init.safetensors" --ckpt "$tmp/run/final.pt" --tower $tower \
    --train-cache "$tmp/cache.safetensors" --train-data "$tmp/data" --cache "$tmp/cache.safetensors" --data "$tmp/data" \
    --threads 1 --json "$tmp/probe.json" > /dev/null || status=1
  "$PY" - "$tmp/probe.json" "$tmp/data/manifest.jsonl" "$tower" <<'EOF' || status=1
import json, sys
res = json.load(open(sys.argv[1]))
want = set(json.loads(open(sys.argv[2]).readline())["truth"]) | {"mean"}
ok = set(res) == want and all(v is None or 0.0 <= v <= 1.0 for v in res.values())
print(("ok   " if ok else "FAIL ") + f"{sys.argv[3]} probe scores {sorted(res)}")
sys.exit(0 if ok else 1)
EOF
  rm -f "$tmp/probe.json"
done
# the supervised ceiling (train/ceiling.py) for a few seconds: every finding scored, steps made
"$PY" -m train.ceiling --template "$tmp/init.safetensors" --cache "$tmp/cache.safetensors" --data "$tmp/data" \
  --eval-cache "$tmp/cache.safetensors" --eval-data "$tmp/data" --minutes 0.05 --batch 2 --threads 1 \
  --input-jitter 0.1 --more "$tmp/cache.safetensors" "$tmp/data" --json "$tmp/ceiling.json" > /dev/null || status=1
"$PY" - "$tmp/ceiling.json" "$tmp/data/manifest.jsonl" <<'EOF' || status=1
import json, math, sys
res = json.load(open(sys.argv[1]))
want = set(json.loads(open(sys.argv[2]).readline())["truth"]) | {"mean", "steps", "loss_last100"}
ok = set(res) == want and res["steps"] >= 1 and math.isfinite(res["loss_last100"]) and \
    all(v is None or 0.0 <= v <= 1.0 for k, v in res.items() if k not in ("steps", "loss_last100"))
print(("ok   " if ok else "FAIL ") + f"supervised ceiling: {res['steps']} steps, scores {sorted(res)}")
sys.exit(0 if ok else 1)
EOF
train_finish $status
