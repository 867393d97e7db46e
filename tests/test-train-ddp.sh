#!/bin/sh
# Distributed training gives the one-process gradients: `torchrun --nproc_per_node 2` (gloo on the
# CPU; train/torchrun.py is torchrun with a fix for torch 1.13 on Python 3.11) on a global batch of 4 and one process on the same batch with --bn-shards 2 (BatchNorm
# statistics per half, as each of the two processes computes them; see train/train.py) dump the
# averaged gradients of the first step with CLIP, TMA and segmentation losses on; every tensor
# must agree (relative max difference < 1e-3). Twice: the decoder on the whole batch, and on
# --seg-batch 2 of the 4 (the recipe's subset: each process's first sample). SKIP (77) without torch, monai, transformers,
# safetensors.
set -u
. "$(dirname "$0")/train-common.sh"
status=0
train_setup 4 || train_finish 1
for seg in 4 2; do
  # shellcheck disable=SC2046
  "$PY" -m train.train $(train_args "$tmp/one$seg") --batch 4 --seg-batch $seg --bn-shards 2 --w-seg 1 \
    --dump-grads "$tmp/one$seg.pt" 2> "$tmp/one$seg.log" || { cat "$tmp/one$seg.log"; train_finish 1; }
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=1 "$PY" -m train.torchrun --standalone --nproc_per_node 2 -m train.train \
    $(train_args "$tmp/two$seg") --batch 4 --seg-batch $seg --w-seg 1 --device cpu --dump-grads "$tmp/two$seg.pt" \
    > "$tmp/two$seg.log" 2>&1 || { cat "$tmp/two$seg.log"; train_finish 1; }
  echo "decoder on $seg of the batch of 4:"
  "$PY" -m train.checks grads "$tmp/one$seg.pt" "$tmp/two$seg.pt" || status=1
done
train_finish $status
