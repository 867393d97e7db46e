#!/bin/sh
# CLIP alone on 4 fixed pairs: with the trainer's default learning rate the loss must fall well
# below ln(4) within 40 steps (it stays at ln(4) when the embeddings collapse to one vector, as in
# an early bundled model's run); at lr 6e-3 (that run's stage 2) they do collapse, and the trainer
# must say so on stderr (run without the centring of the projections, which that run did not
# have: train/model.py Center). Then segmentation fine-tuning from the first run (--freeze-encoder)
# must change the decoder and nothing else the exported model holds, and a model file must load
# back into the trainer (train.checks modelfile, then --init FILE.safetensors) and exports again
# unchanged (train.export --model). Before all that, the
# trainer's phase-split stem and pointwise head against the convolutions they stand for, and its
# batched TMA views against per-crop resizing. SKIP (77)
# without torch, monai, transformers, safetensors.
set -u
. "$(dirname "$0")/train-common.sh"
train_setup 4 || train_finish 1
status=0
# The trainer's stem (a stride-2 convolution computed on the input's even/odd phases, for speed)
# and decoder head (a channel contraction) must be the convolutions they replace: outputs and
# gradients.
"$PY" -m train.checks phase || status=1
# The TMA views made for a whole batch at once (view_params, resize_crops) against F.interpolate
# on each crop in float64.
"$PY" -m train.checks views || status=1
run_clip() { # out [args]
  out=$1
  shift
  # shellcheck disable=SC2046
  "$PY" -m train.train $(train_args "$out") --steps 40 --warmup 5 --batch 4 --w-tma 0 --w-seg 0 --text-aug 0 \
    --log-every 10 "$@" 2> "$out.log" || { cat "$out.log"; train_finish 1; }
}
run_clip "$tmp/default"
"$PY" -m train.checks overfit "$tmp/default/metrics.csv" 4 0.5 || status=1
if grep -q "embeddings collapsed" "$tmp/default.log"; then
  echo "FAIL: collapse warning at the default learning rate"; status=1
fi
run_clip "$tmp/high" --lr 6e-3 --text-lr-scale 1 --no-center
if grep "embeddings collapsed" "$tmp/high.log"; then
  echo "ok   lr 6e-3: the trainer warns of the collapse"
else
  echo "FAIL: no collapse warning at lr 6e-3 (last CLIP $(tail -n 1 "$tmp/high/metrics.csv" | cut -d, -f3))"; status=1
fi
# Stage 2 from the default run: segmentation fine-tuning of the decoder alone (--freeze-encoder)
# changes the decoder's weights and leaves everything the zero-shot path reads bit for bit.
# shellcheck disable=SC2046
"$PY" -m train.train $(train_args "$tmp/seg") --init "$tmp/default/final.pt" --steps 4 --warmup 1 --batch 2 \
  --w-clip 0 --w-tma 0 --w-seg 1 --freeze-encoder --bn-recal 1 2> "$tmp/seg.log" || { cat "$tmp/seg.log"; train_finish 1; }
"$PY" -m train.checks frozen "$tmp/default/final.pt" "$tmp/seg/final.pt" || status=1
# A model file (the export) loads back into the trainer (--init FILE.safetensors): the same tensors,
# the same embeddings; and the trainer starts from one.
"$PY" -m train.checks modelfile "$tmp/seg/final.pt" "$tmp/init.safetensors" || status=1
"$PY" -m train.export --ckpt "$tmp/seg/final.pt" --template "$tmp/init.safetensors" -o "$tmp/seg.safetensors" \
  2> "$tmp/export.log" || { cat "$tmp/export.log"; status=1; }
# Exported again from the model file (train.export --model, how the bundled model got its
# findings' held-out AUROC): the same tensors bit for bit.
"$PY" -m train.export --model "$tmp/seg.safetensors" --template "$tmp/init.safetensors" -o "$tmp/again.safetensors" \
  2> "$tmp/again.log" || { cat "$tmp/again.log"; status=1; }
"$PY" - "$tmp/seg.safetensors" "$tmp/again.safetensors" <<'PYEOF' || status=1
import sys
import numpy as np
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
same = sorted(a) == sorted(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)
print(("ok  " if same else "FAIL") + " export --model: %d tensors, the same bit for bit: %s" % (len(a), same))
sys.exit(0 if same else 1)
PYEOF
# shellcheck disable=SC2046
"$PY" -m train.train $(train_args "$tmp/from-file") --init "$tmp/seg.safetensors" --steps 2 --warmup 1 --batch 2 \
  --w-tma 0.5 --w-seg 1 2> "$tmp/from-file.log" || { cat "$tmp/from-file.log"; status=1; }
train_finish $status
