#!/bin/sh
# t3d-viewer opens the real chest CT (Siemens Sensation 10, 8 mm) with correct orientation: the
# axial, coronal and sagittal views match a reference built from the DICOM direction cosines with
# pydicom (anterior up and patient's right on the image left in axial; superior up in coronal and
# sagittal; anterior left in sagittal), and every flipped reference fits clearly worse. The window
# screenshot is kept as docs material. SKIP without Xvfb, pydicom/PIL or the data folder.
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
quit" "$CT" || exit 1
set -- $(sed -n 's/^crosshair: //p' "$ART/real-ct.out")
[ $# -eq 3 ] || { echo "FAIL: no crosshair printed"; exit 1; }
for plane in axial coronal sagittal; do
  check compare "$ART/real-ct-$plane.png" "$CT" $plane "$1" "$2" "$3" 40 400
done
check compare "$ART/real-ct-axial-lung.png" "$CT" axial "$1" "$2" "$3" -600 1500
exit $fail
