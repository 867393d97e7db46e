#!/bin/sh
# test-ops-parity on the CUDA backend (fp32, the CPU's tolerances): every op against fresh
# PyTorch float64 references, as tests/test-ops-parity.sh does for the CPU. SKIP (77) without a
# usable GPU (or without CUDA in the build), and where the parity Python lacks torch.
set -u
build=${T3D_BUILDDIR:-.}
src=${T3D_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
py=${T3D_PYTHON:-python3}
gpus=$("$build/t3d" devices --json | "$py" -c 'import json,sys; print(len(json.load(sys.stdin)["gpus"]))' 2>/dev/null)
if [ "${gpus:-0}" = 0 ]; then
  echo "SKIP: no usable CUDA device (t3d devices --json lists none)"
  exit 77
fi
T3D_PARITY_BACKEND=cuda exec sh "$src/tests/test-ops-parity.sh"
