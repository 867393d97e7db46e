#!/bin/sh
# Text encoding speed, t3d vs PyTorch in one run: BERT of a built-in config (default t3d-r50,
# BERT-base 12 layers), one sequence of 256 tokens, same thread count, each side in its own
# process (so peak RSS is per side). Prints both lines and the ratio. Not a test (run by hand):
#   tests/bench-text.sh [CONFIG] [THREADS] [REPS]
set -eu
: "${T3D_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${T3D_BUILDDIR:=$T3D_SRCDIR}"
: "${T3D_PYTHON:=python3}"
config=${1:-t3d-r50}
threads=${2:-$(nproc)}
reps=${3:-5}
tmp=$(mktemp "${TMPDIR:-/tmp}/t3d-bench-text.XXXXXX.json")
trap 'rm -f "$tmp"' EXIT
"$T3D_BUILDDIR/tests/text-parity-tool" config "$config" > "$tmp"
c=$("$T3D_BUILDDIR/tests/bench-text" --config "$config" --threads "$threads" --reps "$reps" --tokens 256)
echo "$c"
p=$("$T3D_PYTHON" "$T3D_SRCDIR/tests/reference/text_bench.py" --config "$tmp" --threads "$threads" --reps "$reps" --tokens 256)
echo "$p"
cm=$(echo "$c" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
pm=$(echo "$p" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
awk -v c="$cm" -v p="$pm" 'BEGIN { printf "ratio t3d/pytorch (median): %.2f  (%s)\n", c / p, c < p ? "t3d faster" : "PyTorch faster" }'
