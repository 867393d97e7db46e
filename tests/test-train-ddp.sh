#!/bin/sh
# Distributed training gives the one-process gradients: `torchrun --nproc_per_node 2` (gloo on the
# CPU; train/torchrun.py is torchrun with a fix for torch 1.13 on Python 3.11) on a global batch of 4 and one process on the same batch with --bn-shards 2 (BatchNorm
# statistics per half, as each of the two processes computes them; see train/train.py) dump the
# averaged gradients of the first step with CLIP, TMA and segmentation losses on; every tensor
# must agree (relative max difference < 1e-3). SKIP (77) without torch, monai, transformers,
# safetensors.
set -u
. "$(dirname "$0")/train-common.sh"
status=0
train_setup 4 || train_finish 1
# shellcheck disable=SC2046
"$PY" -m train.train $(train_args "$tmp/one") --batch 4 --bn-shards 2 --w-seg 1 --dump-grads "$tmp/one.pt" \
  2> "$tmp/one.log" || { cat "$tmp/one.log"; train_finish 1; }
# shellcheck disable=SC2046
OMP_NUM_THREADS=1 "$PY" -m train.torchrun --standalone --nproc_per_node 2 -m train.train \
  $(train_args "$tmp/two") --batch 4 --w-seg 1 --device cpu --dump-grads "$tmp/two.pt" \
  > "$tmp/two.log" 2>&1 || { cat "$tmp/two.log"; train_finish 1; }
"$PY" -m train.checks grads "$tmp/one.pt" "$tmp/two.pt" || status=1
train_finish $status
