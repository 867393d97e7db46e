#!/bin/sh
# train.dataparts (the recipe's data step on many cores): phantoms and training cache made by 3
# processes over contiguous seed ranges equal, byte for byte, what one `t3d phantom` and one
# `t3d preprocess` write (folders, manifest, labels.json, cache); a failing part leaves no
# manifest behind (the recipe's "have" check then makes the data again).
# SKIP (77) without numpy.
set -u
PY=${T3D_PYTHON:-python3}
SRC=$(cd "${T3D_SRCDIR:-$(dirname "$0")/..}" && pwd)
T3D="$(cd "${T3D_BUILDDIR:-.}" && pwd)/t3d"
"$PY" -c 'import numpy' >/dev/null 2>&1 || { echo "SKIP: $PY cannot import numpy"; exit 77; }
export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-dataparts.XXXXXX") || exit 1
fail() { echo "FAIL: $*"; echo "kept $tmp"; exit 1; }
opts="--matrix 96 --slice 5"
# shellcheck disable=SC2086
"$T3D" phantom --count 5 --seed 700 --out "$tmp/one" $opts --quiet || fail "t3d phantom"
"$T3D" model-init --config t3d-tiny --seed 1 -o "$tmp/init.safetensors" >/dev/null || fail "model-init"
"$T3D" preprocess --data "$tmp/one" --model "$tmp/init.safetensors" -o "$tmp/one.safetensors" || fail "preprocess"
# shellcheck disable=SC2086
"$PY" -m train.dataparts --t3d "$T3D" --count 5 --seed 700 --out "$tmp/three" --jobs 3 \
  --model "$tmp/init.safetensors" --cache "$tmp/three.safetensors" -- $opts || fail "train.dataparts"
diff -r "$tmp/one" "$tmp/three" || fail "the merged phantom folder differs from one process's"
cmp "$tmp/one.safetensors" "$tmp/three.safetensors" || fail "the merged cache differs from one process's"
[ -d "$tmp/three.parts" ] && fail "the parts folder was left behind"
echo "3 parts = 1 process: phantoms, manifest and cache identical"
if "$PY" -m train.dataparts --t3d "$T3D" --count 4 --seed 1 --out "$tmp/bad" --jobs 2 -- --matrix 7 \
  > "$tmp/bad.log" 2>&1; then
  fail "a failing t3d phantom was not an error"
fi
grep -q "t3d phantom failed" "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "no clear error"; }
[ -f "$tmp/bad/manifest.jsonl" ] && fail "a failed run left a manifest"
echo "a failing part: $(grep 'failed' "$tmp/bad.log")"
rm -rf "$tmp"
