#!/bin/sh
# Training inputs are inference inputs: the trainer reads the cache `t3d preprocess` writes from
# the DICOM series; after 2 training steps the exported model run by `t3d analyze` on each series
# must give the embedding PyTorch computes on the cached tensor (cosine > 0.99999) and the same
# zero-shot logits (so tokenizer and text tower agree too); the exported model and the cache open
# with safetensors.safe_open. SKIP (77) without torch, monai, transformers, safetensors.
set -u
. "$(dirname "$0")/train-common.sh"
status=0
train_setup 3 || train_finish 1
# shellcheck disable=SC2046
"$PY" -m train.train $(train_args "$tmp/run") --steps 2 --batch 2 --w-seg 1 --log-every 1 \
  --export "$tmp/run/model.safetensors" || train_finish 1
"$PY" -m train.checks inputs "$tmp/data" "$tmp/cache.safetensors" "$tmp/run" "$T3D" || status=1
train_finish $status
