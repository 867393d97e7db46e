#!/bin/sh
# Smoke test of `t3d bench-dicom` at a tiny size: it must run every default syntax through both
# t3d and dcm2niix and print a row with numbers for each (not a speed claim: that is the
# 512x512x140 run in the report). Skips (77) when dcm2niix is missing.
set -u
B=${T3D_BUILDDIR:-.}
if ! command -v dcm2niix >/dev/null 2>&1; then
  echo "SKIP: dcm2niix not installed"
  exit 77
fi
out=$("$B/t3d" bench-dicom --size 24,20,5 --runs 1) || { echo "FAIL: t3d bench-dicom exited $?"; printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out"
fails=0
for s in explicit rle jpeg-lossless j2k; do
  printf '%s\n' "$out" | grep -Eq "^$s( +[0-9.]+){8}$" ||
    { echo "FAIL: no timed row for $s (t3d and dcm2niix)"; fails=$((fails + 1)); }
done
[ $fails -eq 0 ] || exit 1
echo "bench-dicom smoke test passed"
