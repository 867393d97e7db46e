#!/bin/sh
# Parity of every CPU op with PyTorch: draws fresh references (tests/reference/ops_reference.py,
# seed printed; T3D_SEED=n reproduces a run), then judges them with test-ops-parity.
# Runs the cases with all cores, then with 3 threads. SKIPs (77) only when the parity Python
# cannot import torch. T3D_PARITY_BACKEND picks the backend (default cpu).
set -u
py=${T3D_PYTHON:-python3}
src=${T3D_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${T3D_BUILDDIR:-.}
if ! "$py" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "SKIP: $py cannot import torch and numpy (set T3D_PYTHON, or run tools/install-deps.sh)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-parity.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
"$py" "$src/tests/reference/ops_reference.py" "$tmp/ops.safetensors" || {
  echo "FAIL: ops_reference.py could not write the references"
  exit 1
}
# all online cores, then 3 threads (uneven splits of work between threads)
rc=0
"$build/tests/test-ops-parity" "${T3D_PARITY_BACKEND:-cpu}" "$tmp/ops.safetensors" || rc=1
"$build/tests/test-ops-parity" --threads 3 "${T3D_PARITY_BACKEND:-cpu}" "$tmp/ops.safetensors" || rc=1
exit $rc
