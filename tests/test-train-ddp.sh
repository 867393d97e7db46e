#!/bin/sh
# Distributed training gives the one-process gradients: `torchrun --nproc_per_node 2` (gloo on the
# CPU; train/torchrun.py is torchrun with a fix for torch 1.13 on Python 3.11) against one process
# on the same global batch of 4, each dumping the averaged gradients of the first step with CLIP,
# TMA and segmentation losses on; every tensor must agree (relative max difference < 1e-3).
# Two ways, each twice (the decoder on the whole batch, and on --seg-batch 2 of the 4, the
# recipe's subset):
# - per-process BatchNorm (DDP's default): the one process runs with --bn-shards 2 (statistics per
#   half, as each of the two processes computes them); it fails without --bn-shards;
# - --sync-bn (train/model.py GlobalBatchNorm3d: statistics and the projections' centring
#   all-reduced over gloo, the batch dealt round-robin): against one plain process; it fails
#   without --sync-bn (the halves' statistics differ from the batch's).
# SKIP (77) without torch, monai, transformers, safetensors.
set -u
. "$(dirname "$0")/train-common.sh"
status=0
train_setup 4 || train_finish 1
for mode in shards sync; do
  if [ $mode = shards ]; then one="--bn-shards 2" two=""; else one="" two="--sync-bn"; fi
  for seg in 4 2; do
    # shellcheck disable=SC2046,SC2086
    "$PY" -m train.train $(train_args "$tmp/one$mode$seg") --batch 4 --seg-batch $seg $one --w-seg 1 \
      --dump-grads "$tmp/one$mode$seg.pt" 2> "$tmp/one$mode$seg.log" || { cat "$tmp/one$mode$seg.log"; train_finish 1; }
    # shellcheck disable=SC2046,SC2086
    OMP_NUM_THREADS=1 "$PY" -m train.torchrun --standalone --nproc_per_node 2 -m train.train \
      $(train_args "$tmp/two$mode$seg") --batch 4 --seg-batch $seg $two --w-seg 1 --device cpu \
      --dump-grads "$tmp/two$mode$seg.pt" > "$tmp/two$mode$seg.log" 2>&1 || { cat "$tmp/two$mode$seg.log"; train_finish 1; }
    echo "BatchNorm $mode, decoder on $seg of the batch of 4:"
    "$PY" -m train.checks grads "$tmp/one$mode$seg.pt" "$tmp/two$mode$seg.pt" || status=1
  done
done
train_finish $status
