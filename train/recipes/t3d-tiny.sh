#!/bin/sh
# Recipe for the bundled model models/t3d-tiny.safetensors, rerunnable by anyone from a built tree
# (run from anywhere; it works in the repository root):   train/recipes/t3d-tiny.sh
# 1. phantoms with `t3d phantom`: N_TRAIN training cases from seed 100000, N_CALIB calibration
#    cases from seed 800000 (they set the familiarity threshold and the findings' calibration),
#    N_SELECT prompt-selection cases from seed 700000 and N_EVAL evaluation cases from seed 900000
#    (disjoint seed ranges; case i uses seed S+i), all at PHANTOM_OPTS;
# 2. training caches with `t3d preprocess` (the engine's own preprocessing: what analyze feeds);
# 3. stage 1, one run from seeded random weights on STAGE1_PROCS processes with --sync-bn (1: one
#    process of PROCS x THREADS threads; see below): every
#    step sums CLIP (symmetric InfoNCE over BATCH volumes and their reports) and LAMBDA * TMA (2
#    global + 4 local views of the same volumes), for TRAIN_MIN minutes of wall time (the cosine
#    schedule follows elapsed time, so a busy machine trains fewer steps, an idle one more);
#    projection outputs centred (train/model.py Center), BatchNorm statistics re-estimated with the
#    final weights; with SEG1=1 (the default) every step adds Dice + cross-entropy on the first
#    SEG_BATCH volumes (one encoder pass serves both; the decoder at SEG_LR_SCALE times the
#    learning rate). SEG1=0 leaves the decoder to stage 2 alone: its step is 1.7 s instead of 3.1
#    (the full-resolution decoder costs more than the encoder and the TMA views together on a CPU),
#    but measured with TRAIN_MIN=35 SEG_MIN=18 (1114 + 438 steps, within the hour) it was worse on
#    everything: macro AUROC 0.582, and the decoder trained on the frozen encoder found the body
#    only (README: the bundled model). SEG_FROM=F keeps the decoder out of the first F of stage 1
#    (CLIP steps ~3x cheaper early, the dense gradient later): measured with F=0.45, LAMBDA=0,
#    TRAIN_MIN=38 on one thread beside the TMA arm, SEG_MIN=14 (56 min, within the hour), it raised
#    macro AUROC to 0.639 but lost spleen, kidney and bone (README); the shipped run uses 0.15;
#    stage 2, segmentation fine-tuning: the decoder alone (--freeze-encoder) for SEG_MIN minutes,
#    data-parallel over PROCS processes of THREADS threads, SEG_BATCH2 volumes a step; exported to
#    OUT with the findings' prompts (train/recipes/findings.json) and the familiarity reference
#    (the training cases' embeddings; the threshold that 99 % of the calibration cases reach,
#    train/export.py);
#    stage 3, alignment on the frozen vision tower (ALIGN_MIN minutes, --freeze-vision): CLIP over
#    ALIGN_BATCH cases trains the vision projection, the text tower and its projection on what the
#    vision projection reads, computed once per case; with CONFIG's "class_histogram_hu" that is the
#    pooled feature and the HU histograms inside each class of the model's own segmentation
#    (README: "The bundled model"); SEG_CE_WEIGHTS weights stage 2's cross-entropy per class;
# 4. with ABLATION=1, CLIP alone (LAMBDA = 0) against CLIP + LAMBDA * TMA: both arms continue
#    from stage 1's weights at step BRANCH_STEP (kept as step-N.pt; fresh optimiser, warm-up
#    and cosine again), ABLATION_MIN minutes each on one thread, both at the same time (not
#    exported): from scratch, an arm that short would not leave chance-level CLIP;
# 5. evaluation of the runs on the evaluation phantoms (train/evaluate.py, model grid) and
#    `t3d eval` of OUT (series grid; the reference figures in README).
# Why both stages run as two 1-thread processes on 2 cores: they make more steps than one 2-thread
# process (PyTorch 1.13's intra-op threading gains little on these small 3D convolutions). Stage 1
# needs --sync-bn for that (BatchNorm statistics and the projections' centring over the global
# batch): per-process statistics left CLIP at ln(16) for a whole 55-min run (README). With it and
# the decoder from the start, one 40-min run also sat at ln(16); with the decoder joining after
# SEG_FROM=0.15 of the run (CLIP + TMA alone first: CLIP leaves ln(16) within ~300 steps) the
# b28d6fc model came out, and the CPU-trained model shipped until 1595f82 from the same recipe on
# the revised phantoms (README: "The CPU-trained model before it"); the model shipped now is this
# recipe on a GPU (the commands below). Defaults: the CPU-trained run's, ~64 min with the data (7 min of it phantoms
# and caches, 56 min training, 1 min export).
# Knobs (environment, defaults in brackets): T3D [_build/t3d], PY [.venv/bin/python],
# WORK [runs/t3d-tiny], OUT [models/t3d-tiny.safetensors], N_TRAIN [800], N_CALIB [100], N_EVAL [200],
# TRAIN_MIN [40], ABLATION_MIN [20], BRANCH_STEP [400], MAX_STEPS [20000], BATCH [16], SEG_BATCH [4], LR [1e-3],
# TEXT_LR_SCALE [0.5], SEG_LR_SCALE [3], LAMBDA [0.5], SEG1 [1], SEG_FROM [0.15], PROCS [2], THREADS [1] (per process), STAGE1_PROCS [2], SEG_MIN [14],
# SEG_BATCH2 [8], INPUT_JITTER [0.1: the intensity jitter of the input view in both stages, x * a + b
# with a in 1 +- J, b in +- J / 2 on the [0, 1] input, i.e. up to +-100 HU of shift; 0 trains on the HU
# inference sees (README: "What the model grid holds"); the TMA crops keep 0.1], ABLATION [0], DROP_TECHNIQUE [0: 1 trains the contrastive stage on the reports
# without their TECHNIQUE line; one full run of it scored macro AUROC 0.526 against the shipped 0.562,
# README "The bundled model"], PHANTOM_OPTS [--matrix 128 --slice 4: a quarter of the voxels of a
# typical series, which the 6 mm model grid does not miss, so that generation takes minutes].
# JOBS [1]: processes for the data step (train.dataparts: contiguous seed ranges, merged into one
# process's output byte for byte); DEVICE [cpu]: cuda trains both stages as one GPU process
# (STAGE1_PROCS and PROCS then do not apply); STAGES [data train align export eval]: the steps to run
# (a step reads what earlier ones left in WORK); TRAIN_ARGS: more train.train options for both
# stages (e.g. --no-bf16); CONFIG [train/recipes/t3d-tiny.json: the built-in t3d-tiny plus the
# class histograms' HU edges and their erosion radius]: the model's config, a built-in name or a JSON file for
# `t3d model-init` (its "preprocess" sets the model grid: at t3d-tiny's 6 mm a median lung nodule
# of the evaluation phantoms covers 6 voxels; a finer grid wants finer phantoms, PHANTOM_OPTS);
# INIT [none]: stage 1 continues from this checkpoint (.pt) or t3d model file (.safetensors, e.g.
# models/t3d-tiny.safetensors; its TMA head starts afresh) with a fresh optimiser and warm-up.
# ALIGN_MIN [30], ALIGN_BATCH [32], ALIGN_INIT [stage 2's output]: stage 3 (a model file without the
# class histograms starts them at weight 0); SEG_CE_WEIGHTS [none]: e.g. 1,1,1,1,1,1,1,1,100;
# SELECT_PROMPTS [1]: the export picks each finding's prompt pair among
# train/recipes/prompt-candidates.json on N_SELECT [300] selection phantoms from seed 700000
# (train.prompts); 0 keeps train/recipes/findings.json's.
# The bundled model is the model shipped until 703fa94 (below) with the class histograms of whole
# classes and of their interiors (this CONFIG), aligned for 12 min on the frozen vision tower here
# on 2 cores (README: "The bundled model"):
#   git show 703fa94:models/t3d-tiny.safetensors > previous.safetensors
#   N_TRAIN=3200 JOBS=2 ALIGN_INIT=previous.safetensors ALIGN_MIN=12 STAGES="data align export eval" \
#     train/recipes/t3d-tiny.sh
# That model is the GPU-trained model below continued here on 2 cores (README):
#   git show 2dad79d:models/t3d-tiny.safetensors > gpu-model.safetensors
#   N_TRAIN=3200 JOBS=2 CONFIG=t3d-tiny INIT=gpu-model.safetensors INPUT_JITTER=0 LR=5e-4 SEG_FROM=0 \
#     TRAIN_MIN=38 SEG_MIN=12 SELECT_PROMPTS=0 STAGES="data train export eval" train/recipes/t3d-tiny.sh
# The GPU-trained model (README: "The GPU-trained model it continues"):
#   N_TRAIN=1600 N_EVAL=0 N_CALIB=0 JOBS=16 STAGES=data train/recipes/t3d-tiny.sh       (GPU machine)
#   DEVICE=cuda STAGES=train BATCH=64 SEG_BATCH=16 SEG_BATCH2=32 PROCS=1 STAGE1_PROCS=1 THREADS=8 \
#     TRAIN_MIN=5.06 SEG_MIN=1.43 TRAIN_ARGS=--no-bf16 train/recipes/t3d-tiny.sh         (GPU machine)
#   N_TRAIN=1600 JOBS=2 STAGES="data export eval" train/recipes/t3d-tiny.sh             (here, 2 cores)
# The export also calibrates each finding's probability on the calibration phantoms' truth
# (train.export --calibrate-findings).
# Run it on an otherwise idle machine: with TRAIN_MIN fixed, every CPU second taken by something
# else is a training step lost (README: "The CPU-trained model before it" gives the steps that run made).
set -eu
cd "$(dirname "$0")/../.."
T3D=${T3D:-_build/t3d}
PY=${PY:-.venv/bin/python}
WORK=${WORK:-runs/t3d-tiny}
OUT=${OUT:-models/t3d-tiny.safetensors}
N_TRAIN=${N_TRAIN:-800}
N_EVAL=${N_EVAL:-200}
N_CALIB=${N_CALIB:-100}
N_SELECT=${N_SELECT:-300}
TRAIN_SEED=100000
SELECT_SEED=700000
CALIB_SEED=800000
EVAL_SEED=900000
TRAIN_MIN=${TRAIN_MIN:-40}
ABLATION_MIN=${ABLATION_MIN:-20}
BRANCH_STEP=${BRANCH_STEP:-400}
SEG_LR_SCALE=${SEG_LR_SCALE:-3}
MAX_STEPS=${MAX_STEPS:-20000}
BATCH=${BATCH:-16}
SEG_BATCH=${SEG_BATCH:-4}
LR=${LR:-1e-3}
TEXT_LR_SCALE=${TEXT_LR_SCALE:-0.5}
LAMBDA=${LAMBDA:-0.5}
SEG1=${SEG1:-1}
SEG_FROM=${SEG_FROM:-0.15}
DROP_TECHNIQUE=${DROP_TECHNIQUE:-0}
PROCS=${PROCS:-2}
THREADS=${THREADS:-1}
STAGE1_PROCS=${STAGE1_PROCS:-2}
SEG_MIN=${SEG_MIN:-14}
SEG_BATCH2=${SEG_BATCH2:-8}
INPUT_JITTER=${INPUT_JITTER:-0.1}
ABLATION=${ABLATION:-0}
PHANTOM_OPTS=${PHANTOM_OPTS:---matrix 128 --slice 4}
JOBS=${JOBS:-1}
DEVICE=${DEVICE:-cpu}
STAGES=${STAGES:-data train align export eval}
TRAIN_ARGS=${TRAIN_ARGS:-}
CONFIG=${CONFIG:-train/recipes/t3d-tiny.json}  # t3d model-init --config: a built-in name or a JSON file (e.g. a finer grid)
ALIGN_MIN=${ALIGN_MIN:-30}
ALIGN_BATCH=${ALIGN_BATCH:-32}
ALIGN_INIT=${ALIGN_INIT:-}
SEG_CE_WEIGHTS=${SEG_CE_WEIGHTS:-}
SELECT_PROMPTS=${SELECT_PROMPTS:-1}
INIT=${INIT:-}  # stage 1 starts from this checkpoint or t3d model file (e.g. the bundled model) instead of seeded random weights
want() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$WORK"
stamp() { date -u +%H:%M:%S; }
t0=$(date +%s)

have() { [ -f "$1/manifest.jsonl" ] && [ "$(wc -l < "$1/manifest.jsonl")" -ge "$2" ]; }
make_set() { # folder count seed: the phantoms and their cache folder-cache.safetensors (kept if there)
  if [ "$JOBS" -gt 1 ] && ! have "$1" "$2"; then  # JOBS processes over seed ranges, merged into one process's output
    # shellcheck disable=SC2086
    "$PY" -m train.dataparts --t3d "$T3D" --count "$2" --seed "$3" --out "$1" --jobs "$JOBS" \
      --model "$WORK/init.safetensors" --cache "$1-cache.safetensors" -- $PHANTOM_OPTS
    return
  fi
  # shellcheck disable=SC2086
  have "$1" "$2" || "$T3D" phantom --count "$2" --seed "$3" --out "$1" $PHANTOM_OPTS --quiet
  [ -f "$1-cache.safetensors" ] ||
    "$T3D" preprocess --data "$1" --model "$WORK/init.safetensors" -o "$1-cache.safetensors"
}
"$T3D" model-init --config "$CONFIG" --seed 1 -o "$WORK/init.safetensors" >/dev/null
if want data; then
  echo "$(stamp) phantoms: $N_TRAIN training (seeds $TRAIN_SEED+), $N_EVAL evaluation (seeds $EVAL_SEED+), $N_CALIB calibration (seeds $CALIB_SEED+), $PHANTOM_OPTS, $JOBS process(es)"
  make_set "$WORK/train" "$N_TRAIN" $TRAIN_SEED
  if [ "$N_EVAL" -gt 0 ]; then make_set "$WORK/eval" "$N_EVAL" $EVAL_SEED; fi
  if [ "$N_CALIB" -gt 0 ]; then make_set "$WORK/calib" "$N_CALIB" $CALIB_SEED; fi
  if [ "$SELECT_PROMPTS" = 1 ] && [ "$N_SELECT" -gt 0 ]; then make_set "$WORK/select" "$N_SELECT" $SELECT_SEED; fi
fi
t_data=$(date +%s)

procs_on() { # procs: the processes a stage runs as (on a GPU one: DEVICE=cuda)
  if [ "$DEVICE" = cpu ]; then echo "$1"; else echo 1; fi
}
launcher() { # procs: how train.train starts (several processes: torchrun)
  if [ "$1" -gt 1 ]; then
    echo "-m train.torchrun --standalone --nproc_per_node $1 -m train.train"
  else
    echo "-m train.train"
  fi
}
run() { # run-name lambda minutes procs threads [more train.train args]: procs processes of threads
  out=$WORK/$1 lambda=$2 minutes=$3 procs=$4 threads=$5
  technique=""
  [ "$DROP_TECHNIQUE" = 1 ] && technique=--drop-technique
  shift 5
  procs=$(procs_on "$procs")
  if [ "$procs" -gt 1 ]; then set -- --sync-bn "$@"; fi  # global BatchNorm statistics and centring
  echo "$(stamp) $out: CLIP + $lambda * TMA$([ "$SEG1" = 1 ] && echo " + Dice/CE on $SEG_BATCH"), batch $BATCH, lr $LR, $minutes min of wall time, $procs x $threads threads, $DEVICE"
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=$threads "$PY" $(launcher "$procs") --device "$DEVICE" --template "$WORK/init.safetensors" \
    --cache "$WORK/train-cache.safetensors" \
    --data "$WORK/train" --threads "$threads" --out "$out" --steps "$MAX_STEPS" --time-budget "$minutes" \
    --batch "$BATCH" --seg-batch "$SEG_BATCH" --lr "$LR" --text-lr-scale "$TEXT_LR_SCALE" \
    --seg-lr-scale "$SEG_LR_SCALE" --warmup 30 --w-clip 1 --w-tma "$lambda" --w-seg "$SEG1" --ckpt-every 50 \
    --log-every 10 --bn-recal 50 --seg-from "$SEG_FROM" --input-jitter "$INPUT_JITTER" $technique $TRAIN_ARGS "$@" \
    2> "$out.log"
}
t_data=$(date +%s)
if want train; then
  run t3d-tiny "$LAMBDA" "$TRAIN_MIN" "$STAGE1_PROCS" "$((PROCS * THREADS / STAGE1_PROCS))" --keep-at "$BRANCH_STEP" \
    ${INIT:+--init "$INIT"}
  # Stage 2, segmentation fine-tuning: the decoder alone on SEG_BATCH2 volumes a step (every one of
  # them through the decoder), SEG_MIN minutes, PROCS processes; the encoder, the projections and the
  # text tower stay as stage 1 left them (the encoder in inference mode), so zero-shot and retrieval
  # are stage 1's.
  procs=$(procs_on "$PROCS")
  echo "$(stamp) $WORK/t3d-tiny-seg: decoder fine-tuning, batch $SEG_BATCH2, $SEG_MIN min, $procs x $THREADS threads, $DEVICE"
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=$THREADS "$PY" $(launcher "$procs") --device "$DEVICE" \
    --template "$WORK/init.safetensors" --cache "$WORK/train-cache.safetensors" --data "$WORK/train" \
    --threads "$THREADS" --out "$WORK/t3d-tiny-seg" --init "$WORK/t3d-tiny/final.pt" --steps "$MAX_STEPS" \
    --time-budget "$SEG_MIN" --batch "$SEG_BATCH2" --lr "$LR" --seg-lr-scale "$SEG_LR_SCALE" --warmup 10 \
    --w-clip 0 --w-tma 0 --w-seg 1 --freeze-encoder --ckpt-every 50 --log-every 10 --bn-recal 50 \
    --input-jitter "$INPUT_JITTER" ${SEG_CE_WEIGHTS:+--ce-weights "$SEG_CE_WEIGHTS"} $TRAIN_ARGS \
    2> "$WORK/t3d-tiny-seg.log"
fi
final=$WORK/t3d-tiny-seg/final.pt
if want align; then
  # Stage 3, alignment on the frozen vision tower (--freeze-vision): what the vision projection reads
  # (the pooled feature and, with CONFIG's "class_histogram_hu", the class histograms of the model's
  # own segmentation) is computed once per case; CLIP over ALIGN_BATCH cases trains the vision
  # projection, the text tower and its projection for ALIGN_MIN minutes, one process of PROCS x
  # THREADS threads. Segmentation stays stage 2's. ALIGN_INIT: start from this checkpoint or model
  # file instead of stage 2's output.
  init=${ALIGN_INIT:-$final}
  echo "$(stamp) $WORK/t3d-tiny-align: CLIP on the frozen vision tower, batch $ALIGN_BATCH, $ALIGN_MIN min, from $init"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=$((PROCS * THREADS)) "$PY" -m train.train --device "$DEVICE" --template "$WORK/init.safetensors" \
    --cache "$WORK/train-cache.safetensors" --data "$WORK/train" --threads "$((PROCS * THREADS))" \
    --out "$WORK/t3d-tiny-align" --init "$init" --steps "$MAX_STEPS" --time-budget "$ALIGN_MIN" --batch "$ALIGN_BATCH" \
    --lr "$LR" --text-lr-scale "$TEXT_LR_SCALE" --warmup 30 --w-clip 1 --w-tma 0 --w-seg 0 --input-jitter 0 \
    --freeze-vision --ckpt-every 200 --log-every 50 $TRAIN_ARGS 2> "$WORK/t3d-tiny-align.log"
fi
[ -f "$WORK/t3d-tiny-align/final.pt" ] && final=$WORK/t3d-tiny-align/final.pt
t_train=$(date +%s)
if want export; then
  # Export with the findings' prompts and the familiarity reference: the training cases' pooled
  # encoder features and the cosine to the nearest of them that 99 % of the unseen calibration cases
  # reach (t3d analyze flags a series below it); the findings' probabilities calibrated on those cases.
  # Each finding's prompt pair: the candidates' best zero-shot AUROC on N_SELECT selection phantoms
  # (train.prompts; seeds of their own: neither the calibration nor the evaluation ones).
  findings=train/recipes/findings.json
  if [ "$SELECT_PROMPTS" = 1 ]; then
    "$PY" -m train.prompts --ckpt "$final" --template "$WORK/init.safetensors" --cache "$WORK/select-cache.safetensors" \
      --data "$WORK/select" --findings "$findings" --candidates train/recipes/prompt-candidates.json \
      --threads "$((PROCS * THREADS))" -o "$WORK/findings-selected.json"
    findings=$WORK/findings-selected.json
  fi
  "$PY" -m train.export --ckpt "$final" --template "$WORK/init.safetensors" \
    --findings "$findings" --calibrate "$WORK/train-cache.safetensors" --calibrate-data "$WORK/train" \
    --calibrate-holdout "$WORK/calib-cache.safetensors" --calibrate-holdout-data "$WORK/calib" --calibrate-findings \
    --threads "$((PROCS * THREADS))" -o "$OUT"
  echo "$(stamp) wrote $OUT"
fi
echo "$(stamp) data $((t_data - t0)) s, training $((t_train - t_data)) s"
if [ "$ABLATION" = 1 ]; then
  branch=$WORK/t3d-tiny/step-$BRANCH_STEP.pt
  run ablation-clip-tma "$LAMBDA" "$ABLATION_MIN" 1 1 --init "$branch" &
  run ablation-clip-only 0 "$ABLATION_MIN" 1 1 --init "$branch"
  wait
fi

want eval || exit 0
# Evaluation: train/evaluate.py for the runs (model grid, the ablation table) and `t3d eval` of
# the exported model (series grid, what clinicians run).
for run in t3d-tiny t3d-tiny-seg t3d-tiny-align ablation-clip-tma ablation-clip-only; do
  [ -f "$WORK/$run/final.pt" ] || continue
  "$PY" -m train.evaluate --ckpt "$WORK/$run/final.pt" --template "$WORK/init.safetensors" \
    --findings train/recipes/findings.json --cache "$WORK/eval-cache.safetensors" --data "$WORK/eval" \
    --threads "$((PROCS * THREADS))" --json "$WORK/$run/eval.json" >/dev/null
  "$PY" - "$WORK/$run" <<'PYEOF'
import csv, json, sys
d = sys.argv[1]
r = json.load(open(d + "/eval.json"))
steps = list(csv.DictReader(open(d + "/metrics.csv")))
print(f"{d.rsplit('/', 1)[-1]:10s} {len(steps)} steps in {float(steps[-1]['elapsed_s']) / 60:.1f} min: "
      f"macro AUROC {r['macro_auroc']:.3f}, text->volume R@1/5/10 "
      + "/".join(f"{r['text_to_volume'][k]:.2f}" for k in ("R@1", "R@5", "R@10"))
      + ", Dice (model grid) " + " ".join(f"{k} {v:.2f}" for k, v in r.get("dice_model_grid", {}).items()))
PYEOF
done
"$T3D" eval --data "$WORK/eval" --model "$OUT" --threads "$((PROCS * THREADS))" --json --no-progress > "$WORK/t3d-eval.json"
echo "t3d eval: $WORK/t3d-eval.json"
echo "$(stamp) done in $(( $(date +%s) - t0 )) s"
