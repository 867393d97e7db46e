#!/bin/sh
# Writes phantom DICOM series in several orientations, anisotropic spacings, odd sizes, every
# storage type and transfer syntax, single-frame CT and Enhanced CT; every file must pass dciodvfy
# with no Error line, whatever the storage type and syntax (u8 is written as Secondary Capture
# Image Storage, since CT Image Storage allows only 16 allocated bits; its SOP class is checked).
# Each series is converted with dcm2niix and compared in
# world space (tests/nifti-compare) with the phantom's own NIfTI export: same voxel values
# (exactly for integer HU; 1e-3 HU for u8, whose fractional slope NIfTI keeps as float32),
# positions within 1e-3 mm. dcm2niix reads neither deflate nor JPEG-LS, so those series are first
# decoded with DCMTK (dcmconv +te, dcmdjpls). When `t3d volume` (the reader) exists, its NIfTI
# export of each series is compared the same way. Skips (77) only when dciodvfy is missing.
set -u
B=${T3D_BUILDDIR:-.}
T3D="$B/t3d"
CMP="$B/tests/nifti-compare"
if ! command -v dciodvfy >/dev/null 2>&1; then
  echo "SKIP: dciodvfy (Debian package dicom3tools) not installed"
  exit 77
fi
have_dcm2niix=yes
command -v dcm2niix >/dev/null 2>&1 || { have_dcm2niix=no; echo "note: dcm2niix missing; value comparison skipped"; }
have_volume=no
"$T3D" volume --help >/dev/null 2>&1 && have_volume=yes

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-dicom-write.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# dciodvfy on every file of $1 (any Error line fails); $2 = storage, which decides the SOP class:
# Secondary Capture Image Storage for u8, CT Image Storage (single-frame) otherwise.
verify_dir() {
  dir=$1 storage=$2 n=0
  for f in "$dir"/*.dcm; do
    n=$((n + 1))
    g=$f
    if dcmdump -q +P 0002,0010 "$f" 2>/dev/null | grep -q '1\.2\.840\.10008\.1\.2\.1\.99\|DeflatedLittleEndianExplicit'; then
      g="$tmp/inflated.dcm"   # dciodvfy cannot read deflated data sets
      dcmconv +te "$f" "$g" || { fail "dcmconv cannot inflate $f"; continue; }
    fi
    sop=$(dcmdump -q -Un +P 0008,0016 "$f" 2>/dev/null | sed -n 's/.*\[\([0-9.]*\)\].*/\1/p')
    case $storage:$sop in
      u8:1.2.840.10008.5.1.4.1.1.7 | s16:1.2.840.10008.5.1.4.1.1.2* | u16:1.2.840.10008.5.1.4.1.1.2* | \
      u12:1.2.840.10008.5.1.4.1.1.2*) ;;
      *) fail "$f: storage $storage written with SOP class '$sop'" ;;
    esac
    out=$(dciodvfy "$g" 2>&1)
    errs=$(printf '%s\n' "$out" | grep '^Error')
    if [ -n "$errs" ]; then
      fail "dciodvfy $f:"
      printf '%s\n' "$errs"
    fi
    printf '%s\n' "$out" | grep '^Warning' >> "$tmp/warnings.txt"
  done
  [ "$n" -gt 0 ] || fail "no files written in $dir"
}

# Files decodable by dcm2niix: inflate deflated, decode JPEG-LS, with DCMTK. dcm2niix 1.0.20220720
# decodes only the first frame of multi-frame RLE right (later frames come out wrong while DCMTK
# and the t3d reader agree with us), so Enhanced CT RLE is decoded with DCMTK too.
decoded_copy() {
  src=$1 syntax=$2 dst=$3 enh=$4
  mkdir -p "$dst"
  for f in "$src"/*.dcm; do
    case $syntax$enh in
      deflate*) dcmconv +te "$f" "$dst/$(basename "$f")" ;;
      jpegls*) dcmdjpls "$f" "$dst/$(basename "$f")" ;;
      rleenhanced) dcmdrle "$f" "$dst/$(basename "$f")" ;;
      *) cp "$f" "$dst/" ;;
    esac || fail "DCMTK cannot decode $f ($syntax)"
  done
}

case_n=0
run_case() {
  orient=$1 size=$2 spacing=$3 storage=$4 syntax=$5 enh=${6:-}
  case_n=$((case_n + 1))
  # Integer HU (slope 1) must match exactly. u8 needs a fractional slope, which NIfTI holds as
  # float32 (scl_slope): up to 255 * 2^-24 * slope relative error, far below 1e-3 HU.
  tol=0
  [ "$storage" = u8 ] && tol=1e-3
  d="$tmp/c$case_n"
  echo "case $case_n: $orient size $size spacing $spacing $storage $syntax $enh"
  if ! "$T3D" phantom-write "$d/dcm" --orientation "$orient" --size "$size" --spacing "$spacing" \
      --storage "$storage" --syntax "$syntax" --seed "$case_n" --nifti "$d/ours.nii.gz" ${enh:+--enhanced}; then
    fail "t3d phantom-write ($orient $storage $syntax)"
    return
  fi
  want=$(echo "$size" | cut -d, -f3)
  [ -z "$enh" ] || want=1
  got=$(ls "$d/dcm" | grep -c '\.dcm$')
  [ "$got" = "$want" ] || fail "case $case_n: $got files written, want $want"
  leftovers=$(ls -A "$d/dcm" | grep -v '\.dcm$' || true)
  [ -z "$leftovers" ] || fail "case $case_n: temporary files left: $leftovers"
  verify_dir "$d/dcm" "$storage"
  if [ $have_dcm2niix = yes ] && [ "$syntax$enh" = j2kenhanced ]; then
    echo "note: dcm2niix misdecodes multi-frame J2K after frame 1 and DCMTK has no J2K decoder: reader comparison only"
  elif [ $have_dcm2niix = yes ]; then
    decoded_copy "$d/dcm" "$syntax" "$d/plain" "$enh"
    mkdir -p "$d/n2"
    if dcm2niix -z n -f conv -o "$d/n2" "$d/plain" > "$d/dcm2niix.log" 2>&1 && [ -f "$d/n2/conv.nii" ]; then
      "$CMP" "$d/ours.nii.gz" "$d/n2/conv.nii" --tol-mm 1e-3 --tol-value "$tol" || fail "case $case_n: dcm2niix output differs from ours"
    else
      fail "case $case_n: dcm2niix failed:"; cat "$d/dcm2niix.log"
    fi
  fi
  if [ $have_volume = yes ]; then
    if "$T3D" volume "$d/dcm" --nifti "$d/reader.nii.gz"; then
      "$CMP" "$d/ours.nii.gz" "$d/reader.nii.gz" --tol-mm 1e-3 --tol-value "$tol" || fail "case $case_n: t3d volume differs from ours"
    else
      fail "case $case_n: t3d volume cannot load the series"
    fi
  fi
}

run_case axial    33,27,7 0.7,0.9,2.5 s16 explicit
run_case sagittal 31,29,9 1.1,0.6,1.5 u16 implicit
run_case coronal  25,35,8 0.8,0.8,3.0 u12 rle
run_case oblique  37,23,6 0.6,0.75,2.0 s16 jpeg-lossless
run_case axial    21,19,5 1.0,1.0,1.25 u16 jpegls
run_case oblique  29,31,5 0.9,0.7,2.2 u12 j2k
run_case sagittal 27,25,4 0.5,0.5,5.0 s16 deflate
run_case coronal  23,21,5 0.8,0.9,2.0 u8 explicit
run_case oblique  25,23,4 0.7,0.7,3.0 u8 rle
run_case axial    19,17,3 0.6,0.8,1.0 s16 j2k
run_case sagittal 17,15,3 0.9,0.9,1.5 u12 jpegls
run_case coronal  15,17,3 0.9,0.9,1.5 u16 jpeg-lossless
# u8 (Secondary Capture) in every other syntax
run_case axial    13,11,3 0.7,0.9,2.0 u8 implicit
run_case sagittal 11,13,3 0.8,0.6,1.5 u8 deflate
run_case oblique  13,15,3 0.9,0.7,2.5 u8 jpeg-lossless
run_case coronal  15,13,3 0.6,0.8,1.0 u8 jpegls
run_case axial    17,15,3 0.8,0.8,2.0 u8 j2k
# Enhanced CT (one multi-frame file)
run_case oblique  33,27,5 0.7,0.9,2.5 s16 explicit enhanced
run_case sagittal 25,23,6 0.8,0.6,1.5 u12 rle enhanced
run_case coronal  21,19,4 0.9,0.8,2.0 u16 jpeg-lossless enhanced
run_case axial    19,21,5 0.6,0.6,1.0 s16 jpegls enhanced
run_case oblique  17,19,4 0.8,0.7,1.5 u12 j2k enhanced
run_case axial    15,13,3 0.8,0.8,2.0 s16 deflate enhanced

# Reader test data: gaps and gantry tilt must still be valid CT images.
"$T3D" phantom-write "$tmp/gaps" --size 16,16,8 --skip 2,5 || fail "phantom-write with --skip"
n=$(ls "$tmp/gaps" | grep -c '\.dcm$'); [ "$n" = 6 ] || fail "gaps: $n files, want 6"
[ ! -e "$tmp/gaps/CT00003.dcm" ] || fail "gaps: skipped slice 2 (CT00003.dcm) was written"
verify_dir "$tmp/gaps" s16
"$T3D" phantom-write "$tmp/tilt" --size 16,16,6 --tilt 15 || fail "phantom-write with --tilt"
verify_dir "$tmp/tilt" s16
dcmdump -q +P 0018,1120 "$tmp/tilt/CT00001.dcm" | grep -q '\[15\]' || fail "tilt: GantryDetectorTilt is not 15"

# The reader refuses gaps rather than loading a wrong grid; it resamples the tilt onto a regular
# grid (tests/test-dicom-geometry.sh checks the values) unless told --strict-geometry.
if [ $have_volume = yes ]; then
  if "$T3D" volume "$tmp/gaps" > /dev/null 2> "$tmp/gaps.err"; then fail "t3d volume loaded a series with gaps"; fi
  "$T3D" volume "$tmp/tilt" 2>/dev/null | grep -q "^geometry gantry tilt 15.0° corrected" || fail "t3d volume did not correct the tilt"
  if "$T3D" volume "$tmp/tilt" --strict-geometry > /dev/null 2> "$tmp/tilt.err"; then fail "t3d volume --strict-geometry loaded a tilted series"; fi
  echo "reader on gaps: $(cat "$tmp/gaps.err")"
  echo "reader on tilt: $(cat "$tmp/tilt.err")"
fi

# Writing where we cannot: exit 1 and a message naming the file, no crash.
if [ "$(id -u)" != 0 ]; then
  mkdir "$tmp/ro" && chmod a-w "$tmp/ro"
  if "$T3D" phantom-write "$tmp/ro" --size 8,8,2 2> "$tmp/ro.err"; then fail "writing into a read-only directory succeeded"; fi
  grep -q "$tmp/ro" "$tmp/ro.err" || { fail "error does not name the file:"; cat "$tmp/ro.err"; }
fi
touch "$tmp/afile"
if "$T3D" phantom-write "$tmp/afile/sub" --size 8,8,2 2> "$tmp/nf.err"; then fail "writing below a regular file succeeded"; fi
grep -q "afile" "$tmp/nf.err" || { fail "error does not name the path:"; cat "$tmp/nf.err"; }

echo "dciodvfy warnings (all files, deduplicated):"
sort "$tmp/warnings.txt" 2>/dev/null | uniq -c
[ $have_volume = yes ] || echo "note: 't3d volume' (reader) not available: reader comparison not run"
if [ $fails -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "all DICOM write cases passed"
