#!/bin/sh
# t3d-viewer on phantom series under Xvfb: each GL view (axial, coronal, sagittal) read back from
# the framebuffer matches a radiological reference drawn independently with pydicom, for series
# acquired axially, sagittally and obliquely; the lung (Ctrl+1 accelerator) and bone presets
# change the pixels and match their own windows; the series browser lists two series with
# thumbnails and shows the one activated; a DICOMDIR opens. SKIP without Xvfb or pydicom/PIL.
XVFB_FIRST=140
. "$(dirname "$0")/viewer-env.sh"
T3D="$BUILD/t3d"
work=$(mktemp -d "${TMPDIR:-/tmp}/t3d-viewer-phantom.XXXXXX") || exit 1

for orient in axial sagittal oblique; do
  "$T3D" phantom-write "$work/$orient" --orientation $orient --size 96,80,40 --spacing 1.2,1.2,2.5 --seed 3 \
    > /dev/null || { echo "FAIL: phantom-write $orient"; fail=1; continue; }
  run_viewer "phantom-$orient" "wait-series 60
print series
print position
frames 2
screenshot axial $ART/phantom-$orient-axial.png
screenshot coronal $ART/phantom-$orient-coronal.png
screenshot sagittal $ART/phantom-$orient-sagittal.png
key <Primary>1
frames 1
screenshot axial $ART/phantom-$orient-axial-lung.png
preset bone
frames 1
screenshot axial $ART/phantom-$orient-axial-bone.png
screenshot window $ART/phantom-$orient-window.png
quit" "$work/$orient" || continue
  set -- $(sed -n 's/^crosshair: //p' "$ART/phantom-$orient.out")
  if [ $# -ne 3 ]; then echo "FAIL: no crosshair printed"; fail=1; continue; fi
  for plane in axial coronal sagittal; do
    check compare "$ART/phantom-$orient-$plane.png" "$work/$orient" $plane "$1" "$2" "$3" 40 400
  done
  check compare "$ART/phantom-$orient-axial-lung.png" "$work/$orient" axial "$1" "$2" "$3" -600 1500
  check compare "$ART/phantom-$orient-axial-bone.png" "$work/$orient" axial "$1" "$2" "$3" 400 1800
  check differ "$ART/phantom-$orient-axial.png" "$ART/phantom-$orient-axial-lung.png" 0.2
  check differ "$ART/phantom-$orient-axial.png" "$ART/phantom-$orient-axial-bone.png" 0.2
  grep -q "llvmpipe\|renderer: ." "$ART/phantom-$orient.out" || { echo "FAIL: no GL renderer reported"; fail=1; }
done

# Series browser: a folder holding two series lists both with thumbnails (loaded off the main
# thread); activating the second row shows that series.
"$T3D" phantom-write "$work/two/a" --size 64,64,20 --seed 5 > /dev/null &&
  "$T3D" phantom-write "$work/two/b" --size 80,72,16 --seed 6 > /dev/null || { echo "FAIL: phantom-write"; fail=1; }
run_viewer browser "wait-series 60
print browser
print series
select-series 1
wait-series 60
print series
print browser
sleep 200
screenshot window $ART/browser-window.png
quit" "$work/two"
out="$ART/browser.out"
n_thumbs=$(grep '^browser: ' "$out" | head -2 | grep -c ' thumbnail')
uid1=$(sed -n 's/^browser: 1 \([^ ]*\) .*/\1/p' "$out" | head -1)
shown=$(sed -n 's/^series: \([^ ]*\) .*/\1/p' "$out" | sed -n 2p)
selected=$(grep '^browser: ' "$out" | tail -2 | sed -n 's/^browser: \([01]\) .* selected$/\1/p')
if [ "$n_thumbs" != 2 ] || [ -z "$uid1" ] || [ "$shown" != "$uid1" ] || [ "$selected" != 1 ]; then
  echo "FAIL: browser: $n_thumbs thumbnails (expected 2); second row $uid1, shown after selecting it: $shown, selected row '$selected'"
  cat "$out"; fail=1
fi

# A DICOMDIR opens like a folder (made by DCMTK's dcmmkdir over ISO 9660 file names).
if command -v dcmmkdir >/dev/null 2>&1; then
  "$T3D" phantom-write "$work/dd-src" --size 48,40,12 --seed 7 > /dev/null || fail=1
  mkdir -p "$work/dd/IMAGES"
  for f in "$work"/dd-src/*.dcm; do cp "$f" "$work/dd/IMAGES/$(basename "$f" .dcm)"; done
  (cd "$work/dd" && dcmmkdir --recurse -Pgp IMAGES > /dev/null 2>&1) || { echo "FAIL: dcmmkdir"; fail=1; }
  rm -rf "$ART/env-screenshots"
  T3D_VIEWER_SCREENSHOT="$ART/env-screenshots" run_viewer dicomdir "wait-series 60
print series
frames 3
quit" "$work/dd/DICOMDIR"
  grep -q "^series: .* CT 48x40x12 " "$ART/dicomdir.out" || { echo "FAIL: DICOMDIR not shown:"; cat "$ART/dicomdir.out"; fail=1; }
  # T3D_VIEWER_SCREENSHOT=DIR: every view writes its PNG once the series is shown.
  for plane in axial coronal sagittal; do
    [ -s "$ART/env-screenshots/$plane.png" ] || { echo "FAIL: T3D_VIEWER_SCREENSHOT wrote no $plane.png"; fail=1; }
  done
fi
rm -rf "$work"
exit $fail
