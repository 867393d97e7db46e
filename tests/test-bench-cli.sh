#!/bin/sh
# Smoke test of `t3d bench` on t3d-tiny at 32^3: every row runs in its own process and reports
# numbers (t3d side always; PyTorch side when torch + monai + transformers import), so the
# benchmark the issue asks for cannot silently rot. Timings are not judged here.
set -u
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
notorch=""
if ! "$PY" -c 'import torch, monai, transformers' >/dev/null 2>&1; then
  notorch="--no-torch"
fi
out=$(T3D_PYTHON="$PY" "$BUILD/t3d" bench --config t3d-tiny --shape 32,32,32 --repeat 1 --cancel-after 0 \
  --threads 2 --no-peers $notorch 2>&1) || { echo "FAIL: t3d bench exited $?"; echo "$out"; exit 1; }
echo "$out"
status=0
for row in "encoder " "encoder+segmentation" "text ("; do
  line=$(echo "$out" | grep -F "$row" | head -1)
  # columns: label..., t3d ms, torch ms, speedup | ...
  t3d_ms=$(echo "$line" | sed 's/|.*//' | awk '{print $(NF-2)}')
  torch_ms=$(echo "$line" | sed 's/|.*//' | awk '{print $(NF-1)}')
  case "$t3d_ms" in ''|nan|-nan) echo "FAIL: row '$row' has no t3d time: $line"; status=1 ;; esac
  if [ -z "$notorch" ]; then
    case "$torch_ms" in ''|nan|-nan) echo "FAIL: row '$row' has no PyTorch time: $line"; status=1 ;; esac
  fi
done
echo "$out" | grep -q "vision arena" || { echo "FAIL: no arena line"; status=1; }
exit $status
