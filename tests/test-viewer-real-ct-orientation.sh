#!/bin/sh
# t3d-viewer opens the real chest CT (Siemens Sensation 10, 8 mm) with correct orientation: the
# axial, coronal and sagittal views match a reference built from the DICOM direction cosines with
# pydicom (anterior up and patient's right on the image left in axial; superior up in coronal and
# sagittal; anterior left in sagittal), and every flipped reference fits clearly worse; zoom and
# a middle-drag pan move the image exactly as the reference expects; wheel,
# click, drag and pointer readout (mm, HU) work through pointer events. The window screenshots
# are kept (docs/viewer.png is one). SKIP without Xvfb, pydicom/PIL or the data folder.
XVFB_FIRST=160
. "$(dirname "$0")/viewer-env.sh"
CT=${T3D_REAL_CT:-$SRC/../shared/data/real-ct/chest-siemens-sensation10-8mm}
[ -d "$CT" ] || CT=/work/shared/data/real-ct/chest-siemens-sensation10-8mm
if [ ! -d "$CT" ]; then
  echo "SKIP: real CT folder not found (set T3D_REAL_CT)"
  exit 77
fi
run_viewer real-ct "wait-series 60
print series
print position
frames 2
screenshot axial $ART/real-ct-axial.png
screenshot coronal $ART/real-ct-coronal.png
screenshot sagittal $ART/real-ct-sagittal.png
screenshot window $ART/real-ct-window.png
preset lung
frames 1
screenshot axial $ART/real-ct-axial-lung.png
preset mediastinum
zoom 2
frames 1
screenshot axial $ART/real-ct-axial-zoom2.png
drag-view axial 2 0.5 0.5 0.6 0.45
frames 1
screenshot axial $ART/real-ct-axial-zoom2-pan.png
fit
scroll axial 2
print position
click-view axial 0.5 0.3
print position
drag-view axial 1 0.5 0.5 0.6 0.55
print window
pointer axial 0.23 0.39
print readout
pointer axial 0.46 0.40
print readout
preset mediastinum
frames 1
screenshot window $ART/real-ct-window-readout.png
quit" "$CT" || exit 1
out="$ART/real-ct.out"
set -- $(sed -n 's/^crosshair: //p' "$out" | sed -n 1p)
[ $# -eq 3 ] || { echo "FAIL: no crosshair printed"; exit 1; }
# Interaction through real (synthetic) pointer events: two wheel steps down = two slices on; a
# click in the upper (anterior) part of the axial view moves the crosshair anterior (smaller j)
# in the same slice; a left drag changes the window; the readout gives HU under the pointer:
# lung (right lung, image left) below -500, the heart (image centre, slightly left) soft tissue.
set -- "$@" $(sed -n 's/^crosshair: //p' "$out" | sed -n 2p) $(sed -n 's/^crosshair: //p' "$out" | sed -n 3p)
if [ $# -ne 9 ] || [ "$6" -ne $(($3 + 2)) ] || [ "$8" -ge "$5" ] || [ "$9" -ne "$6" ]; then
  echo "FAIL: crosshair after scroll/click: start $1 $2 $3, after scroll $4 $5 $6, after click $7 $8 $9"; fail=1
fi
grep -q "^window: 40.0 400.0" "$out" && { echo "FAIL: left drag did not change the window"; fail=1; }
hu() { sed -n 's/^readout: .* \(-\{0,1\}[0-9][0-9]*\) HU.*/\1/p' "$out" | sed -n "$1p"; }
lung=$(hu 1) heart=$(hu 2)
echo "readout: lung $lung HU, heart $heart HU"
if [ -z "$lung" ] || [ -z "$heart" ] || [ "$lung" -gt -500 ] || [ "$heart" -lt -20 ] || [ "$heart" -gt 150 ]; then
  echo "FAIL: readout HU not lung (< -500) and soft tissue (-20..150): lung '$lung', heart '$heart'"; fail=1
fi
# The image left is the patient's right: the readout's LPS L coordinate there is negative.
lung_l=$(sed -n 's/^readout: L \(-\{0,1\}[0-9.]*\) .*/\1/p' "$out" | sed -n 1p)
case "$lung_l" in -*) ;; *) echo "FAIL: pointer on the image left reads L '$lung_l' mm, expected the patient's right (< 0)"; fail=1 ;; esac
set -- $1 $2 $3
for plane in axial coronal sagittal; do
  check compare "$ART/real-ct-$plane.png" "$CT" $plane "$1" "$2" "$3" 40 400
done
check compare "$ART/real-ct-axial-lung.png" "$CT" axial "$1" "$2" "$3" -600 1500
# zoom 2, then a middle-button drag by (0.1, -0.05) of the view: the image follows exactly
check compare "$ART/real-ct-axial-zoom2.png" "$CT" axial "$1" "$2" "$3" 40 400 2 0 0
check compare "$ART/real-ct-axial-zoom2-pan.png" "$CT" axial "$1" "$2" "$3" 40 400 2 0.1 -0.05
exit $fail
