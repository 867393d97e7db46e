#!/bin/sh
# End to end: `t3d phantom-write` series (small; odd and multiple-of-8 rows x columns; axial,
# sagittal, coronal, oblique) -> `t3d report` with the bundled model in every format. Checks: the
# text is byte-identical on a rerun and names the model and its SHA-256; every DICOM file passes
# dciodvfy without an error line; SEG and SR read back through DCMTK (tests/report-readback) and
# highdicom (tests/report-check-dicom.py) with SEG masks voxel-exact against `t3d analyze --mask`
# (and, for a constructed case with two spherical lesions, against its known labels)
# and SR content as written. SKIP (77) without dciodvfy or highdicom.
set -u
BUILD=${T3D_BUILDDIR:-.}
SRC=${T3D_SRCDIR:-.}
PY=${T3D_PYTHON:-python3}
T3D="$BUILD/t3d"
MODEL="$BUILD/models/t3d-tiny-init.safetensors"
if ! command -v dciodvfy >/dev/null 2>&1; then
  echo "SKIP: dciodvfy (dicom3tools) not installed"
  exit 77
fi
if ! "$PY" -c 'import highdicom, numpy' >/dev/null 2>&1; then
  echo "SKIP: highdicom not installed for $PY (tools/requirements-test.txt)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-report.XXXXXX") || exit 1
fail() { echo "FAIL: $*"; echo "kept $tmp"; exit 1; }
# no index of the user's may leak in
XDG_DATA_HOME="$tmp/xdg"; export XDG_DATA_HOME

# The constructed case (two spherical lesions, oblique, 61x47 pixels) through the API.
d="$tmp/fake"
"$BUILD/tests/report-fake-export" "$d" >"$d.out" || fail "report-fake-export"
grep -q "^lesions 2 " "$d.out" || fail "constructed case: expected 2 lesions, got $(cat "$d.out")"
grep -q "largest diameter" "$d/report.txt" || fail "constructed case: no lesion diameter in the report"
grep -q "gr.*er als zuvor. (model probability 0.910) \[wording from similar case 1: prior" "$d/report.txt" \
  || fail "constructed case: the neighbour's (UTF-8) sentence was not reused: $(cat "$d/report.txt")"
for f in report-sr.dcm report-seg.dcm; do
  dciodvfy "$d/$f" >"$d/$f.vfy" 2>&1
  if grep -q "^Error" "$d/$f.vfy"; then fail "constructed case: dciodvfy errors in $f: $(grep '^Error' "$d/$f.vfy")"; fi
done
"$BUILD/tests/report-readback" seg "$d/report-seg.dcm" >"$d/seg.rb" || fail "constructed case: DCMTK cannot read the SEG"
"$BUILD/tests/report-readback" sr "$d/report-sr.dcm" >"$d/sr.rb" || fail "constructed case: DCMTK cannot read the SR"
grep -q "^NUM Diameter|" "$d/sr.rb" || fail "constructed case: DCMTK finds no diameter in the SR"
"$PY" "$SRC/tests/report-check-dicom.py" "$d/series" "$d/mask.nii.gz" "$d/report-seg.dcm" "$d/report-sr.dcm" \
  "$d/report.txt" "$d/seg.rb" "$d/sr.rb" || fail "constructed case: DICOM read-back checks"
echo "ok: constructed case with lesions"

hash=$(sha256sum "$MODEL" | cut -d' ' -f1)
for spec in "axial 40,32,10" "sagittal 36,29,12" "coronal 33,25,9" "oblique 27,23,11"; do
  set -- $spec
  o=$1 size=$2 d="$tmp/$1"
  "$T3D" phantom-write "$d/series" --size "$size" --spacing 0.9,0.8,2.5 --orientation "$o" >/dev/null \
    || fail "$o: phantom-write"
  "$T3D" report "$d/series" --model "$MODEL" --threads 2 --format all -o "$d/out" 2>"$d/err" \
    || fail "$o: t3d report --format all: $(cat "$d/err")"
  "$T3D" report "$d/series" --model "$MODEL" --threads 2 >"$d/stdout.txt" || fail "$o: t3d report to stdout"
  cmp -s "$d/stdout.txt" "$d/out/report.txt" || fail "$o: report text differs between two runs: $(diff "$d/stdout.txt" "$d/out/report.txt")"
  grep -q "MACHINE GENERATED, NOT REVIEWED" "$d/out/report.txt" || fail "$o: no draft notice"
  grep -q "SHA-256 $hash" "$d/out/report.txt" || fail "$o: report does not name the model hash $hash"
  grep -q "^## FINDINGS" "$d/out/report.md" || fail "$o: Markdown lacks its FINDINGS heading"
  for f in report-sr.dcm report-seg.dcm; do
    dciodvfy "$d/out/$f" >"$d/$f.vfy" 2>&1
    if grep -q "^Error" "$d/$f.vfy"; then
      fail "$o: dciodvfy reports errors in $f: $(grep '^Error' "$d/$f.vfy")"
    fi
  done
  "$BUILD/tests/report-readback" seg "$d/out/report-seg.dcm" >"$d/seg.rb" || fail "$o: DCMTK cannot read the SEG"
  "$BUILD/tests/report-readback" sr "$d/out/report-sr.dcm" >"$d/sr.rb" || fail "$o: DCMTK cannot read the SR"
  "$T3D" analyze "$d/series" --model "$MODEL" --threads 2 --mask "$d/mask.nii.gz" >/dev/null || fail "$o: analyze --mask"
  "$PY" "$SRC/tests/report-check-dicom.py" "$d/series" "$d/mask.nii.gz" "$d/out/report-seg.dcm" \
    "$d/out/report-sr.dcm" "$d/out/report.txt" "$d/seg.rb" "$d/sr.rb" || fail "$o: DICOM read-back checks"
  echo "ok: $o $size"
done

# Wording from the case index: two indexed copies of the same phantom (identical pixels, so
# cosine 1 and the same findings) with reports naming every finding; with --threshold 0 every
# finding is present, all close neighbours agree, and each finding takes the first hit's sentence.
n=0
for c in 1 2 3; do
  "$T3D" phantom-write "$tmp/idx/case-$c/series" --size 30,26,8 --seed 7 >/dev/null || fail "index phantom $c"
done
"$T3D" model-info "$MODEL" --json >"$tmp/model.json" || fail "model-info"
names=$("$PY" -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["findings"]))' "$tmp/model.json") \
  || fail "finding names from model-info --json"
for c in 1 2; do
  echo "$names" | while read -r f; do printf 'Case %s shows %s on review. ' "$c" "$f"; done >"$tmp/idx/case-$c/report.txt"
done
mv "$tmp/idx/case-3" "$tmp/query"
"$T3D" index "$tmp/idx" --index "$tmp/cases.db" --model "$MODEL" --threads 2 >/dev/null 2>"$tmp/index.err" \
  || fail "t3d index: $(cat "$tmp/index.err")"
"$T3D" report "$tmp/query/series" --model "$MODEL" --threads 2 --index "$tmp/cases.db" --threshold 0 \
  >"$tmp/nb.txt" || fail "t3d report --index"
nf=$(echo "$names" | grep -c .)
reused=$(grep -c "\[wording from similar case 1: .*similarity 1.00\]" "$tmp/nb.txt")
[ "$reused" -eq "$nf" ] || fail "expected all $nf findings worded from case 1, got $reused: $(cat "$tmp/nb.txt")"
grep -q "^- Case [12] shows cardiomegaly on review. (model probability" "$tmp/nb.txt" \
  || fail "the first hit's sentence not reused verbatim: $(cat "$tmp/nb.txt")"
"$T3D" report "$tmp/query/series" --model "$MODEL" --threads 2 --no-index --threshold 0 >"$tmp/nonb.txt" \
  || fail "t3d report --no-index"
grep -q "wording from similar case" "$tmp/nonb.txt" && fail "--no-index still used the index"
echo "ok: wording from the index"

# Misuse: SR without -o, an unknown format.
"$T3D" report "$tmp/axial/series" --model "$MODEL" --format sr >/dev/null 2>&1
[ $? -eq 2 ] || fail "--format sr without -o should be a usage error"
"$T3D" report "$tmp/axial/series" --model "$MODEL" --format pdf >/dev/null 2>&1
[ $? -eq 2 ] || fail "--format pdf should be a usage error"
rm -rf "$tmp"
exit 0
