#!/bin/sh
# The resample step of t3d preprocessing against PyTorch F.interpolate(trilinear,
# align_corners=False) on scale-consistent sizes: max relative error <= 1e-5. Skips (77)
# without a Python that has torch.
set -eu
py=${T3D_PYTHON:-python3}
"$py" -c 'import torch, numpy' 2>/dev/null || { echo "skip: $py has no torch/numpy"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/t3d-preprocess-parity.XXXXXX")
trap 'rm -rf "$dir"' EXIT
for c in 0 1; do
  "$T3D_BUILDDIR/tests/preprocess-parity-tool" "$dir" "$c"
  "$py" "$T3D_SRCDIR/tests/reference/preprocess_reference.py" "$dir"
done
