# Sourced by tests/test-train-*.sh: checks the Python packages (SKIP 77 without them), makes a
# temporary folder with a tiny phantom set (train/testdata.py), the t3d-tiny template and the
# training cache written by `t3d preprocess`. Not a test on its own.
PY=${T3D_PYTHON:-python3}
SRC=$(cd "${T3D_SRCDIR:-$(dirname "$0")/..}" && pwd)
BUILD=$(cd "${T3D_BUILDDIR:-.}" && pwd)
T3D="$BUILD/t3d"
if ! "$PY" -c 'import torch, monai, transformers, safetensors' >/dev/null 2>&1; then
  echo "SKIP: $PY cannot import torch, monai, transformers and safetensors (tools/install-deps.sh)"
  exit 77
fi
export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-train.XXXXXX") || exit 1
train_setup() { # cases
  "$PY" -m train.testdata "$T3D" "$tmp/data" "$1" || return 1
  "$T3D" model-init --config "${TRAIN_CONFIG:-t3d-tiny}" --seed 1 -o "$tmp/init.safetensors" >/dev/null || return 1
  "$T3D" preprocess --data "$tmp/data" --model "$tmp/init.safetensors" -o "$tmp/cache.safetensors" || return 1
}
train_args() { # out
  echo --template "$tmp/init.safetensors" --cache "$tmp/cache.safetensors" --data "$tmp/data" --out "$1" --threads 1
}
train_finish() { # status
  if [ "$1" -eq 0 ]; then rm -rf "$tmp"; else echo "kept $tmp for inspection"; fi
  exit "$1"
}
