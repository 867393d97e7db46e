#!/bin/sh
# tools/bundle.sh: the bundle holds every library its t3d loads but the C library's own (ldd with
# the wrappers' search path resolves each one inside the bundle), its build/t3d wrapper runs
# without DCMDICTPATH set (DCMTK's dictionary comes from the bundle: a phantom is written as DICOM
# and read back), and a build tree without t3d is a clear error. SKIP (77) without ldd.
set -u
B=$(cd "${T3D_BUILDDIR:-.}" && pwd)
SRC=$(cd "${T3D_SRCDIR:-$(dirname "$0")/..}" && pwd)
command -v ldd >/dev/null 2>&1 || { echo "SKIP: no ldd"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-bundle.XXXXXX") || exit 1
fail() { echo "FAIL: $*"; echo "kept $tmp"; exit 1; }
sh "$SRC/tools/bundle.sh" -b "$B" "$tmp/b" || fail "tools/bundle.sh"
out=$(LD_LIBRARY_PATH="$tmp/b/lib:$tmp/b/lib/cuda" ldd "$tmp/b/lib/t3d") || fail "ldd"
echo "$out" | grep -q "not found" && fail "unresolved libraries: $(echo "$out" | grep 'not found')"
outside=$(echo "$out" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -v "^$tmp/b/lib/" |
  grep -v -E '/(libc|libm|libdl|libpthread|librt)\.so|/ld-linux' || true)
[ -z "$outside" ] || fail "loaded from outside the bundle: $outside"
echo "ok   $(echo "$out" | grep -c "$tmp/b/lib/") libraries resolve inside the bundle"
env -u DCMDICTPATH "$tmp/b/build/t3d" phantom --count 1 --seed 5 --out "$tmp/ph" --matrix 64 --slice 5 --quiet ||
  fail "bundle t3d phantom"
env -u DCMDICTPATH "$tmp/b/build/t3d" volume "$tmp/ph/case-00000/dicom" >"$tmp/vol.txt" || fail "bundle t3d volume"
grep -q "^size 64 x 64 x" "$tmp/vol.txt" || fail "the phantom read back as: $(cat "$tmp/vol.txt")"
echo "ok   the bundle's t3d writes a phantom and reads it back: $(grep "^size" "$tmp/vol.txt")"
for t in "$tmp"/b/build/tests/*; do
  [ -x "$t" ] || fail "$t is not executable"
done
sh "$SRC/tools/bundle.sh" -b "$tmp" "$tmp/c" >"$tmp/bad.log" 2>&1 && fail "a build tree without t3d was accepted"
grep -q "no built t3d" "$tmp/bad.log" || fail "unclear error: $(cat "$tmp/bad.log")"
echo "ok   a build tree without t3d: $(cat "$tmp/bad.log")"
rm -rf "$tmp"
