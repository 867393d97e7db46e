#!/bin/sh
# Text encoder parity against Hugging Face transformers: tests/reference/text_reference.py builds a
# random BertModel for the text config of t3d-tiny (weights saved as model.safetensors, and again
# as pytorch_model.bin) and of t3d-r50 (BERT-base, all 12 layers), converts and assembles it with
# our tools, and tests/text-parity-tool compares ids, hidden states, [CLS] features and projected
# embeddings (cosine >= 0.99999, max relative error <= 1e-4). SKIP (77) only when torch or
# transformers cannot be imported.
set -u
: "${T3D_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${T3D_BUILDDIR:=$T3D_SRCDIR}"
: "${T3D_PYTHON:=python3}"

if ! "$T3D_PYTHON" -c "import torch, transformers, monai" >/dev/null 2>&1; then
  echo "SKIP: $T3D_PYTHON cannot import torch, transformers and monai (run tools/install-deps.sh)"
  exit 77
fi
tool="$T3D_BUILDDIR/tests/text-parity-tool"
dir=$(mktemp -d "${TMPDIR:-/tmp}/t3d-text-parity.XXXXXX") || exit 1
"$tool" vocab > "$dir/vocab.txt" || { echo "FAIL: text-parity-tool vocab"; exit 1; }
rc=0
for case in t3d-tiny:safetensors t3d-tiny:bin t3d-r50:safetensors; do
  name=${case%%:*}
  fmt=${case#*:}
  out="$dir/$name-$fmt"
  echo "== $name text config, HF weights as $fmt"
  if ! "$tool" config "$name" > "$dir/$name.json"; then
    echo "FAIL: text-parity-tool config $name"
    rc=1
    continue
  fi
  if ! "$T3D_PYTHON" "$T3D_SRCDIR/tests/reference/text_reference.py" --config "$dir/$name.json" \
      --vocab "$dir/vocab.txt" --format "$fmt" "$out"; then
    echo "FAIL: text_reference.py for $name ($fmt)"
    rc=1
    continue
  fi
  if ! "$tool" run "$out/model.t3d" "$out/ref.safetensors" "$out/sentences.json"; then
    echo "FAIL: $name ($fmt): t3d differs from Hugging Face (files kept in $out)"
    rc=1
    continue
  fi
  rm -rf "$out" # the BERT-base folders are large
done
if [ $rc -eq 0 ]; then
  rm -rf "$dir"
fi
exit $rc
