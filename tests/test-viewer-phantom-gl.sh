#!/bin/sh
# t3d-viewer on phantom series under Xvfb: each GL view (axial, coronal, sagittal) read back from
# the framebuffer matches a radiological reference drawn independently with pydicom, for series
# acquired axially, sagittally and obliquely; the lung (Ctrl+1 accelerator) and bone presets
# change the pixels and match their own windows. SKIP without Xvfb or pydicom/PIL.
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
rm -rf "$work"
exit $fail
