#!/bin/sh
# Vision parity against MONAI's own 3-D ResNet and our PyTorch decoder/heads
# (tests/reference/t3d_reference.py): fresh random weights (BN statistics included) written as a
# t3d model file, run by t3d, compared with PyTorch float64 outputs: cosine >= 0.99999 and max
# relative error <= 1e-4 for the pooled feature, the vision embedding and the segmentation
# logits. t3d-tiny (basic blocks, bias_downsample) and t3d-r50 at full depth on 64^3 (the
# smallest input whose sides are multiples of the encoder stride 32). SKIP without torch/monai.
set -u
PY=${T3D_PYTHON:-python3}
SRC=${T3D_SRCDIR:-$(dirname "$0")/..}
BUILD=${T3D_BUILDDIR:-.}
TOOL="$BUILD/tests/vision-parity-tool"
if ! "$PY" -c 'import torch, monai' >/dev/null 2>&1; then
  echo "SKIP: $PY cannot import torch and monai (./tools/install-deps.sh)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-vision-parity.XXXXXX") || exit 1
status=0
run_case() { # config shape bias_downsample seed
  "$TOOL" config "$1" > "$tmp/$1.json" || return 1
  "$PY" "$SRC/tests/reference/t3d_reference.py" write --config "$tmp/$1.json" --shape "$2" \
    --bias-downsample "$3" --seed "$4" --model "$tmp/$1.safetensors" --io "$tmp/$1-io.safetensors" || return 1
  "$TOOL" run "$tmp/$1.safetensors" "$tmp/$1-io.safetensors" || return 1
}
run_case t3d-tiny 2,1,64,64,64 1 11 || status=1
run_case t3d-r50 1,1,64,64,64 0 12 || status=1
if [ $status -eq 0 ]; then rm -rf "$tmp"; else echo "kept $tmp for inspection"; fi
exit $status
