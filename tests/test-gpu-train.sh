#!/bin/sh
# tools/gpu-train.sh run, on the CPU (DEVICE=cpu) with a bundle of this build and no wheels: it
# makes the training phantoms with the bundle's t3d, trains both stages within its budget and
# leaves stage1.tar and stage2.tar with their final.pt, metrics and logs; the training cache it
# reports has the SHA-256 of the one this build's recipe makes from the same seeds (so the export
# and evaluation here read the data the GPU trained on); an unknown mode is a usage error. About
# a minute of training; SKIP (77) without torch, monai, transformers, safetensors or ldd.
set -u
. "$(dirname "$0")/train-common.sh"
command -v ldd >/dev/null 2>&1 || { echo "SKIP: no ldd"; exit 77; }
status=0
mkdir -p "$tmp/prep" || train_finish 1
sh "$SRC/tools/bundle.sh" -b "$BUILD" "$tmp/prep/bundle.tar.xz" >"$tmp/bundle.log" 2>&1 ||
  { cat "$tmp/bundle.log"; train_finish 1; }
BUDGET=75 RESERVE=15 N_TRAIN=6 JOBS=2 DEVICE=cpu BATCH=3 SEG_BATCH=2 SEG_BATCH2=2 THREADS=1 TRAIN_ARGS='' PY="$PY" \
  WORK="$tmp/gpu-work" sh "$SRC/tools/gpu-train.sh" run "$tmp/prep" "$tmp/out" >"$tmp/run.log" 2>&1 ||
  { echo "FAIL: tools/gpu-train.sh run"; cat "$tmp/run.log"; train_finish 1; }
for s in 1 2; do
  d=t3d-tiny
  [ "$s" = 2 ] && d=t3d-tiny-seg
  list=$(tar -tf "$tmp/out/stage$s.tar" 2>/dev/null | tr '\n' ' ')
  for f in "$d/final.pt" "$d/metrics.csv" "$d.log"; do
    case " $list " in *" $f "*) ;; *) echo "FAIL: stage$s.tar lacks $f (holds: $list)"; status=1 ;; esac
  done
done
[ "$status" = 0 ] && echo "ok   stage1.tar and stage2.tar hold final.pt, metrics.csv and the logs"
grep -q "training exit 0" "$tmp/out/steps.txt" || { echo "FAIL: $(cat "$tmp/out/steps.txt")"; status=1; }
# the same seeds through this build's t3d and the recipe
WORK="$tmp/here" T3D="$T3D" PY="$PY" N_TRAIN=6 N_EVAL=0 N_CALIB=0 N_SELECT=0 STAGES=data sh "$SRC/train/recipes/t3d-tiny.sh" \
  >"$tmp/here.log" 2>&1 || { echo "FAIL: the recipe's data stage"; cat "$tmp/here.log"; train_finish 1; }
here=$(sha256sum "$tmp/here/train-cache.safetensors" | cut -d' ' -f1)
there=$(cat "$tmp/out/train-cache.sha256")
if [ "$here" = "$there" ]; then
  echo "ok   the training cache made with the bundle equals this build's (${here%"${here#????????????????}"})"
else
  echo "FAIL: training cache $there with the bundle, $here here"; status=1
fi
sh "$SRC/tools/gpu-train.sh" bogus >"$tmp/usage.log" 2>&1 && { echo "FAIL: an unknown mode was accepted"; status=1; }
grep -q "usage: tools/gpu-train.sh prepare DIR | run DIR OUT" "$tmp/usage.log" ||
  { echo "FAIL: no usage line: $(cat "$tmp/usage.log")"; status=1; }
train_finish "$status"
