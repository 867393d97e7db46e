#!/bin/sh
# Smoke test of `t3d bench-ops --quick --repeat 1`: every op row is printed with numeric
# t3d ms and rate; with PyTorch importable, numeric torch ms and ratio too.
set -u
build=${T3D_BUILDDIR:-.}
py=${T3D_PYTHON:-python3}
out=$(mktemp "${TMPDIR:-/tmp}/t3d-bench-ops.XXXXXX") || exit 99
trap 'rm -f "$out"' EXIT INT TERM
torch=1
"$py" -c 'import torch' >/dev/null 2>&1 || torch=0
flag=""
[ $torch = 1 ] || flag=--no-torch
"$build/t3d" bench-ops --quick --repeat 1 --threads 2 $flag >"$out"
rc=$?
cat "$out"
if [ $rc != 0 ]; then
  echo "FAIL: t3d bench-ops exited with $rc"
  exit 1
fi
fail=0
for row in "conv1 7^3 s2" "maxpool 3 s2 p1" "layer1 conv 3^3" "layer1 conv 1^3 64->256" "layer2 conv 3^3 s2" \
  "layer4 conv 1^3 512->2048" "residual add+relu" "global avgpool" "convT 2^3 s2 64->32" "resample trilinear" \
  "argmax 4 classes" "linear 768->768" "linear 768->3072" "linear 3072->768" "layernorm" "gelu" "softmax" \
  "attention H12 Dh64" "embedding 30522x768"; do
  # columns after the 26-character name: shape, t3d ms, rate value, rate unit, torch ms, ratio
  line=$(grep -F -- "$row" "$out" | awk -v n="$row" 'substr($0, 1, length(n)) == n && substr($0, length(n) + 1, 1) == " "')
  if [ -z "$line" ]; then
    echo "FAIL: no row for '$row'"
    fail=1
    continue
  fi
  set -- $(printf '%s\n' "$line" | cut -c28-)
  num='^[0-9]+(\.[0-9]+)?$'
  if [ $# -ne 6 ] || ! echo "$2" | grep -Eq "$num" || ! echo "$3" | grep -Eq "$num" ||
    { [ "$4" != "GFLOP/s" ] && [ "$4" != "GB/s" ]; }; then
    echo "FAIL: row '$row' lacks numeric t3d columns: $line"
    fail=1
  elif [ $torch = 1 ] && { ! echo "$5" | grep -Eq "$num" || ! echo "$6" | grep -Eq "$num"; }; then
    echo "FAIL: row '$row' lacks numeric PyTorch columns: $line"
    fail=1
  fi
done
[ $fail = 0 ] && echo "PASS: all 19 rows with numeric columns"
exit $fail
