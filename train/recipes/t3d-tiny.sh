#!/bin/sh
# Recipe for the bundled model models/t3d-tiny.safetensors, rerunnable by anyone from a built tree:
#   train/recipes/t3d-tiny.sh            (from the repository root; ~35-45 min on 2 CPU cores)
# Steps: phantoms (`t3d phantom`: training seeds 100000+, evaluation seeds 900000+, disjoint),
# training caches (`t3d preprocess`: the engine's own preprocessing), pre-training (CLIP + lambda
# TMA), fine-tuning (Dice + cross-entropy segmentation with the CLIP loss kept on), export to the
# t3d model file with the findings' prompts, evaluation (`t3d eval` when built, and
# train/evaluate.py), and with ABLATION=1 the same pre-training budget with CLIP alone.
# Everything goes under $WORK (default runs/t3d-tiny); OUT is the model file written.
# Environment knobs (defaults in brackets): T3D [_build/t3d], PY [.venv/bin/python], WORK,
# OUT [models/t3d-tiny.safetensors], N_TRAIN [400], N_EVAL [200], PRE_STEPS [400],
# FT_STEPS [260], BATCH [8], FT_BATCH [4], LAMBDA [0.5], THREADS [2], ABLATION [1],
# PHANTOM_OPTS [--matrix 128 --slice 4: training phantoms at a quarter of the voxels, which
# the 6 mm model grid does not miss; evaluation phantoms keep every drawn acquisition].
set -eu
cd "$(dirname "$0")/../.."
T3D=${T3D:-_build/t3d}
PY=${PY:-.venv/bin/python}
WORK=${WORK:-runs/t3d-tiny}
OUT=${OUT:-models/t3d-tiny.safetensors}
N_TRAIN=${N_TRAIN:-400}
N_EVAL=${N_EVAL:-200}
TRAIN_SEED=100000
EVAL_SEED=900000
PRE_STEPS=${PRE_STEPS:-400}
FT_STEPS=${FT_STEPS:-260}
BATCH=${BATCH:-8}
FT_BATCH=${FT_BATCH:-4}
LAMBDA=${LAMBDA:-0.5}
THREADS=${THREADS:-2}
ABLATION=${ABLATION:-1}
PHANTOM_OPTS=${PHANTOM_OPTS:---matrix 128 --slice 4}
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$WORK"
stamp() { date -u +%H:%M:%S; }
t0=$(date +%s)

echo "$(stamp) phantoms: $N_TRAIN training (seeds $TRAIN_SEED+), $N_EVAL evaluation (seeds $EVAL_SEED+)"
# shellcheck disable=SC2086
[ -f "$WORK/train/manifest.jsonl" ] || "$T3D" phantom --count "$N_TRAIN" --seed $TRAIN_SEED --out "$WORK/train" $PHANTOM_OPTS
[ -f "$WORK/eval/manifest.jsonl" ] || "$T3D" phantom --count "$N_EVAL" --seed $EVAL_SEED --out "$WORK/eval"

echo "$(stamp) template and caches"
"$T3D" model-init --config t3d-tiny --seed 1 -o "$WORK/init.safetensors" >/dev/null
[ -f "$WORK/train-cache.safetensors" ] || "$T3D" preprocess --data "$WORK/train" --model "$WORK/init.safetensors" -o "$WORK/train-cache.safetensors"
[ -f "$WORK/eval-cache.safetensors" ] || "$T3D" preprocess --data "$WORK/eval" --model "$WORK/init.safetensors" -o "$WORK/eval-cache.safetensors"
t_data=$(date +%s)

common="--template $WORK/init.safetensors --cache $WORK/train-cache.safetensors --data $WORK/train --threads $THREADS"
evaluate() { # checkpoint json
  "$PY" -m train.evaluate --ckpt "$1" --template "$WORK/init.safetensors" --findings train/recipes/findings.json \
    --cache "$WORK/eval-cache.safetensors" --data "$WORK/eval" --threads "$THREADS" --json "$2" >/dev/null
}

echo "$(stamp) pre-training: CLIP + $LAMBDA * TMA, $PRE_STEPS steps of $BATCH"
# shellcheck disable=SC2086
"$PY" -m train.train $common --out "$WORK/pretrain" --steps "$PRE_STEPS" --batch "$BATCH" --lr 2e-3 \
  --warmup 30 --w-clip 1 --w-tma "$LAMBDA" --w-seg 0
t_pre=$(date +%s)
evaluate "$WORK/pretrain/final.pt" "$WORK/pretrain/eval.json"

echo "$(stamp) fine-tuning: Dice + cross-entropy (+ CLIP), $FT_STEPS steps of $FT_BATCH"
# shellcheck disable=SC2086
"$PY" -m train.train $common --out "$WORK/finetune" --init "$WORK/pretrain/final.pt" --steps "$FT_STEPS" \
  --batch "$FT_BATCH" --lr 2e-3 --warmup 20 --w-clip 1 --w-tma 0 --w-seg 1 \
  --export "$OUT" --findings train/recipes/findings.json
t_ft=$(date +%s)
evaluate "$WORK/finetune/final.pt" "$WORK/finetune/eval.json"
echo "$(stamp) wrote $OUT; data $((t_data - t0)) s, pre-training $((t_pre - t_data)) s, fine-tuning $((t_ft - t_pre)) s"
if "$T3D" help 2>&1 | grep -q "^ *eval "; then
  "$T3D" eval --data "$WORK/eval" --model "$OUT" > "$WORK/t3d-eval.txt" && cat "$WORK/t3d-eval.txt"
fi

if [ "$ABLATION" = 1 ]; then
  echo "$(stamp) ablation: CLIP alone, the same $PRE_STEPS pre-training steps of $BATCH"
  # shellcheck disable=SC2086
  "$PY" -m train.train $common --out "$WORK/ablation-clip" --steps "$PRE_STEPS" --batch "$BATCH" --lr 2e-3 \
    --warmup 30 --w-clip 1 --w-tma 0 --w-seg 0
  evaluate "$WORK/ablation-clip/final.pt" "$WORK/ablation-clip/eval.json"
  "$PY" - "$WORK" <<'EOF'
import json, sys
w = sys.argv[1]
for name in ("ablation-clip", "pretrain"):
    r = json.load(open(f"{w}/{name}/eval.json"))
    print(f"{name:14s} macro AUROC {r['macro_auroc']:.3f}  text->volume R@1/5/10 "
          + " ".join(f"{r['text_to_volume'][k]:.3f}" for k in ("R@1", "R@5", "R@10")))
EOF
fi
echo "$(stamp) done in $(( $(date +%s) - t0 )) s"
