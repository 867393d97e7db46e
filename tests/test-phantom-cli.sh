#!/bin/sh
# `t3d phantom`: two runs with the same seed write byte-identical cases (DICOM files included:
# UIDs and dates derive from the seed), the manifest has one JSON line per case with all 11
# findings, labels.json names the 9 classes, and each labels.nii.gz has the same dimensions and
# affine as `t3d volume SERIES --nifti` (within 1e-3 mm). Bad arguments exit 2.
set -u
B=${T3D_BUILDDIR:-.}
T3D="$B/t3d"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-phantom-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

args="--count 3 --seed 40 --matrix 48 --slice 12 --quiet"
"$T3D" phantom $args --out "$tmp/a" || fail "t3d phantom (run 1) exited $?"
"$T3D" phantom $args --out "$tmp/b" || fail "t3d phantom (run 2) exited $?"
diff -r "$tmp/a" "$tmp/b" >"$tmp/diff" 2>&1 || { fail "two runs differ:"; head -5 "$tmp/diff"; }

lines=$(wc -l <"$tmp/a/manifest.jsonl")
[ "$lines" -eq 3 ] || fail "manifest has $lines lines, want 3"
for f in "pulmonary nodule" "pleural effusion" "pneumothorax" "consolidation" "emphysema" "cardiomegaly" \
  "liver lesion" "renal cyst" "splenomegaly" "ascites" "lymphadenopathy"; do
  n=$(grep -c "\"$f\":{\"present\":" "$tmp/a/manifest.jsonl")
  [ "$n" -eq 3 ] || fail "finding '$f' in $n of 3 manifest lines"
done
grep -q '^{"case":"case-00002","seed":42,"series":"case-00002/dicom","labels":"case-00002/labels.nii.gz"' \
  "$tmp/a/manifest.jsonl" || fail "manifest line 3 does not start as the contract says"
grep -q '"classes": \["background", "body", "lung", "heart", "liver", "spleen", "kidney", "bone", "lesion"\]' \
  "$tmp/a/labels.json" || fail "labels.json: $(cat "$tmp/a/labels.json")"

# NIfTI-1 header: dims (bytes 40-55), srow_x/y/z (280-327), as numbers
header() { gzip -dc "$1" | head -c 348 >"$2.hdr"; od -An -v -j 40 -N 16 -t d2 "$2.hdr"; od -An -v -j 280 -N 48 -t f4 "$2.hdr"; }
for c in 0 1 2; do
  d="$tmp/a/case-0000$c"
  [ -s "$d/report.txt" ] || fail "case $c: no report.txt"
  grep -q "IMPRESSION\|Impression" "$d/report.txt" || fail "case $c: report without impression"
  if ! "$T3D" volume "$d/dicom" --nifti "$tmp/vol$c.nii.gz" >/dev/null; then
    fail "case $c: t3d volume cannot read the series"
    continue
  fi
  header "$tmp/vol$c.nii.gz" "$tmp/v$c" | tr -s ' \n' '\n\n' | grep -v '^$' >"$tmp/v$c.txt"
  header "$d/labels.nii.gz" "$tmp/l$c" | tr -s ' \n' '\n\n' | grep -v '^$' >"$tmp/l$c.txt"
  paste "$tmp/v$c.txt" "$tmp/l$c.txt" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-3) bad = 1 }
    END { exit bad }' || { fail "case $c: labels.nii.gz geometry differs from the series:"; paste "$tmp/v$c.txt" "$tmp/l$c.txt"; }
done

"$T3D" phantom --count 1 --seed 1 >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --out should exit 2"
"$T3D" phantom --count x --seed 1 --out "$tmp/c" >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad --count should exit 2"
"$T3D" phantom --count 1 --seed 1 --out "$tmp/c" --storage u8 >/dev/null 2>&1
[ $? -eq 2 ] || fail "--storage u8 should exit 2 (CT needs 16-bit pixels)"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "test-phantom-cli: ok"
