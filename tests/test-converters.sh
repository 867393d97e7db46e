#!/bin/sh
# Converters on checkpoints saved with torch: tests/reference/converters_check.py saves MONAI and
# MedicalNet-style ResNet state_dicts and Hugging Face BERT folders (safetensors and
# pytorch_model.bin), converts and assembles them, compares every tensor with the original and
# checks clear errors for wrong or corrupt input; then `t3d model-info --check` must accept each
# assembled model, and `t3d model-info` open the fragments; safetensors.safe_open must open every
# file written. SKIP (77) only when torch,
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
# Every file the tools wrote (converters, assembler, `t3d model-init`) must open with the
# reference safetensors reader (safetensors 0.8.0 refuses gaps between tensors).
"$T3D_BUILDDIR/t3d" model-init --config t3d-tiny --seed 3 -o "$dir/init.safetensors" >/dev/null || rc=1
if "$T3D_PYTHON" -c "import safetensors" >/dev/null 2>&1; then
  for f in $(sed -n 's/^MODEL //p; s/^FRAGMENT //p' "$dir/log.txt") "$dir/init.safetensors"; do
    if "$T3D_PYTHON" -c '
import sys
from safetensors import safe_open
with safe_open(sys.argv[1], "np") as f:
    n = sum(f.get_tensor(k).size >= 0 for k in f.keys())
print("ok   safetensors.safe_open reads %d tensors of" % n, sys.argv[1].rsplit("/", 1)[-1])' "$f"; then :; else
      echo "FAIL safetensors.safe_open refuses $f"
      rc=1
    fi
  done
else
  echo "note: safetensors not importable; reference-reader check not run"
fi
if [ $rc -eq 0 ]; then
  rm -rf "$dir"
else
  echo "FAIL (files kept in $dir)"
fi
exit $rc
