#!/bin/sh
# Converters on checkpoints saved with torch: tests/reference/converters_check.py saves MONAI and
# MedicalNet-style ResNet state_dicts and Hugging Face BERT folders (safetensors and
# pytorch_model.bin), converts and assembles them, compares every tensor with the original and
# checks clear errors for wrong or corrupt input; then `t3d model-info --check` must accept each
# assembled model, and `t3d model-info` open the fragments. SKIP (77) only when torch,
# transformers or monai cannot be imported.
set -u
: "${T3D_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${T3D_BUILDDIR:=$T3D_SRCDIR}"
: "${T3D_PYTHON:=python3}"

if ! "$T3D_PYTHON" -c "import torch, transformers, monai" >/dev/null 2>&1; then
  echo "SKIP: $T3D_PYTHON cannot import torch, transformers and monai (run tools/install-deps.sh)"
  exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/t3d-converters.XXXXXX") || exit 1
"$T3D_PYTHON" "$T3D_SRCDIR/tests/reference/converters_check.py" "$dir" > "$dir/log.txt" 2>&1
rc=$?
cat "$dir/log.txt"
for model in $(sed -n 's/^MODEL //p' "$dir/log.txt"); do
  if "$T3D_BUILDDIR/t3d" model-info "$model" --check > "$dir/info.txt" 2>&1; then
    echo "ok   t3d model-info --check accepts $(basename "$model")"
  else
    echo "FAIL t3d model-info --check rejects $(basename "$model"):"
    cat "$dir/info.txt"
    rc=1
  fi
done
for frag in $(sed -n 's/^FRAGMENT //p' "$dir/log.txt"); do
  if "$T3D_BUILDDIR/t3d" model-info "$frag" > "$dir/info.txt" 2>&1; then
    echo "ok   t3d model-info opens fragment $(basename "$frag")"
  else
    echo "FAIL t3d model-info cannot open fragment $(basename "$frag"):"
    cat "$dir/info.txt"
    rc=1
  fi
done
if [ $rc -eq 0 ]; then
  rm -rf "$dir"
else
  echo "FAIL (files kept in $dir)"
fi
exit $rc
