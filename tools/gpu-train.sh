#!/bin/sh
# Trains the bundled model's two stages on a GPU machine that has PyTorch but not t3d's build
# dependencies, in one call with a fixed wall-clock budget (the device tool's machines: a few
# minutes each, no network), and brings back what the export and evaluation need. Two halves:
#
#   tools/gpu-train.sh prepare DIR    here (network, a built t3d): DIR/bundle.tar.xz (tools/bundle.sh)
#                                     and DIR/wheels/ (MONAI, which GPU machines tend to lack; pip
#                                     download, no dependencies; MONAI_PIN [monai==1.6.1, the one the
#                                     trainer was checked with on torch 2.11; the test requirements'
#                                     1.3.2 is for Debian's torch 1.13])
#   tools/gpu-train.sh run DIR OUT    there: unpacks the bundle, installs the wheels into a private
#                                     folder, makes the training phantoms and cache with the recipe
#                                     (JOBS processes), trains stage 1 and 2 on the GPU in what is
#                                     left of BUDGET seconds (78 % / 22 %), and writes to OUT:
#                                     stage1.tar and stage2.tar (final.pt, metrics.csv, args.json,
#                                     the log), train-cache.sha256, steps.txt (progress), env.txt
#
# Then, here: unpack OUT's tars into WORK (runs/t3d-tiny), and run the recipe's
# `STAGES="data align export eval"` (the align stage on 2 cores, ALIGN_MIN) with the same N_TRAIN: the same seeds make the same training cache
# (compare its SHA-256 with train-cache.sha256), the export calibrates and writes the model.
#
# Environment (run): BUDGET seconds for the whole call [540], RESERVE of it kept for what follows
# the training [60], N_TRAIN [1600], JOBS [nproc],
# DEVICE [cuda], BATCH [64], SEG_BATCH [16], SEG_BATCH2 [32], TRAIN_ARGS [--no-bf16], PY [python3],
# WORK [/tmp/t3d-gpu-train]. The recipe's other knobs pass through.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-}
case $mode in
prepare)
  [ $# -eq 2 ] || { echo "usage: tools/gpu-train.sh prepare DIR" >&2; exit 2; }
  dir=$2
  mkdir -p "$dir/wheels" || exit 1
  monai=${MONAI_PIN:-monai==1.6.1}
  "${PY:-$src/.venv/bin/python}" -m pip download -q --no-deps --python-version 3.11 --only-binary=:all: \
    -d "$dir/wheels" "$monai" ||
    { echo "tools/gpu-train.sh: pip download $monai failed" >&2; exit 1; }
  rm -f "$dir/bundle.tar.xz"
  "$src/tools/bundle.sh" "$dir/bundle.tar.xz" || exit 1
  ls -la "$dir" "$dir/wheels"
  exit 0
  ;;
run) [ $# -eq 3 ] || { echo "usage: tools/gpu-train.sh run DIR OUT" >&2; exit 2; } ;;
*)
  echo "usage: tools/gpu-train.sh prepare DIR | run DIR OUT" >&2
  exit 2
  ;;
esac

dir=$(cd "$2" && pwd) || exit 1
mkdir -p "$3" || exit 1
out=$(cd "$3" && pwd)
t0=$(date +%s)
budget=${BUDGET:-540}
elapsed() { echo $(($(date +%s) - t0)); }
log() { echo "[$(elapsed) s] $*" | tee -a "$out/steps.txt"; }
PY=${PY:-python3}
WORK=${WORK:-/tmp/t3d-gpu-train}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-gpu-train.XXXXXX") || exit 1

# t3d from the bundle (its build/t3d wrapper finds its libraries and DCMTK's dictionaries)
tar -xJf "$dir/bundle.tar.xz" -C "$tmp" || { log "cannot unpack $dir/bundle.tar.xz"; exit 1; }
T3D=$(find "$tmp" -mindepth 3 -maxdepth 3 -path '*/build/t3d' | head -n 1)
if [ -z "$T3D" ] || ! "$T3D" version >/dev/null 2>&1; then
  log "the bundle's t3d does not run"
  exit 1
fi
# the carried wheels, where the machine lacks them
if ls "$dir"/wheels/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$tmp/site" "$dir"/wheels/*.whl ||
    { log "cannot install the wheels in $dir/wheels"; exit 1; }
  export PYTHONPATH="$tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
{
  "$PY" -c "import torch, transformers, monai; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', 'transformers', transformers.__version__,
    'monai', monai.__version__)"
  "$T3D" version
  nproc
} >"$out/env.txt" 2>&1 || { log "python or t3d not usable here (env.txt)"; cat "$out/env.txt"; exit 1; }
log "$(head -n 1 "$out/env.txt")"

export WORK T3D PY
export N_TRAIN="${N_TRAIN:-1600}"
cd "$src" || exit 1
log "data: $N_TRAIN training phantoms, ${JOBS:-$(nproc)} processes"
N_EVAL=0 N_CALIB=0 N_SELECT=0 JOBS=${JOBS:-$(nproc)} STAGES=data sh train/recipes/t3d-tiny.sh >"$out/data.log" 2>&1 ||
  { log "data failed"; tail -n 20 "$out/data.log"; exit 1; }
sha256sum "$WORK/train-cache.safetensors" | cut -d' ' -f1 >"$out/train-cache.sha256"
log "data done, training cache $(cut -c1-16 "$out/train-cache.sha256")"

# what is left, less RESERVE seconds for the stage-2 start, the BatchNorm re-estimation and the tars
left=$((budget - $(elapsed) - ${RESERVE:-60}))
[ "$left" -gt 30 ] || { log "no time left to train ($left s)"; exit 1; }
s1=$("$PY" -c "print(round($left * 0.78 / 60, 2))")
s2=$("$PY" -c "print(round($left * 0.22 / 60, 2))")
log "training: stage 1 $s1 min, stage 2 $s2 min, device ${DEVICE:-cuda}"
(while sleep 30; do
  tail -n 1 "$WORK/t3d-tiny.log" "$WORK/t3d-tiny-seg.log" 2>/dev/null | tr '\r' '\n' | grep 'steps/s' | tail -n 1
done) >>"$out/steps.txt" 2>&1 &
monitor=$!
DEVICE=${DEVICE:-cuda} STAGES=train BATCH=${BATCH:-64} SEG_BATCH=${SEG_BATCH:-16} SEG_BATCH2=${SEG_BATCH2:-32} \
  PROCS=1 STAGE1_PROCS=1 THREADS=${THREADS:-8} TRAIN_MIN=$s1 SEG_MIN=$s2 TRAIN_ARGS=${TRAIN_ARGS:---no-bf16} \
  sh train/recipes/t3d-tiny.sh >"$out/train.log" 2>&1
rc=$?
kill "$monitor" 2>/dev/null
log "training exit $rc"
for f in "$WORK/t3d-tiny.log" "$WORK/t3d-tiny-seg.log"; do
  echo "== $f"
  tr '\r' '\n' <"$f" | tail -n 6
done >>"$out/steps.txt" 2>&1
tar -C "$WORK" -cf "$out/stage1.tar" t3d-tiny/final.pt t3d-tiny/metrics.csv t3d-tiny/args.json t3d-tiny.log 2>/dev/null
tar -C "$WORK" -cf "$out/stage2.tar" t3d-tiny-seg/final.pt t3d-tiny-seg/metrics.csv t3d-tiny-seg/args.json \
  t3d-tiny-seg.log 2>/dev/null
rm -rf "$tmp"
log "done: $(cd "$out" && echo *)"
exit "$rc"
