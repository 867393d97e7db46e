#!/usr/bin/env python3
"""Checks t3d-viewer screenshots against a reference drawn independently from the DICOM files
(pydicom + numpy): the series is reoriented by its direction cosines to patient axes and shown
the radiological way (axial: anterior up, patient's right on image left; coronal: superior up,
right on left; sagittal: superior up, anterior left), windowed, and compared pixel by pixel
with what the viewer's GL view drew. Not a viewer: it never reads t3d's code or output formats.

  viewer_check.py compare SHOT SERIES_DIR PLANE I J K CENTER WIDTH [ZOOM PAN_FX PAN_FY]
  viewer_check.py overlay SHOT SERIES_DIR PLANE I J K CENTER WIDTH HIDDEN_LABELS(comma list or -)
  viewer_check.py differ A.png B.png MIN_FRACTION
Exit 0 when the check holds, 1 with both values printed when it does not."""
import glob
import os
import sys

import numpy as np
import pydicom
from PIL import Image

PLANES = ("axial", "coronal", "sagittal")
TEXT_TOP, TEXT_BOTTOM, EDGE = 60, 50, 25  # corner annotations and edge letters: not compared


def load_series(folder):
    slices = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
        if not os.path.isfile(path) or os.path.basename(path) == "DICOMDIR":
            continue
        try:
            ds = pydicom.dcmread(path)
        except Exception:
            continue
        if "ImagePositionPatient" in ds and "PixelData" in ds:
            slices.append(ds)
    if not slices:
        sys.exit("no DICOM images in %s" % folder)
    iop = np.array(slices[0].ImageOrientationPatient, dtype=float)
    row, col = iop[:3], iop[3:]  # directions of increasing column index i and row index j
    normal = np.cross(row, col)
    slices.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, dtype=float), normal)))
    vol = np.stack([d.pixel_array.astype(np.float64) * float(getattr(d, "RescaleSlope", 1))
                    + float(getattr(d, "RescaleIntercept", 0)) for d in slices])  # [k][j][i]
    ps = [float(x) for x in slices[0].PixelSpacing]  # between rows, between columns
    pos = [float(np.dot(np.array(d.ImagePositionPatient, dtype=float), normal)) for d in slices]
    dz = float(np.median(np.diff(pos))) if len(pos) > 1 else 1.0
    dirs = [row, col, normal]      # volume axis a (i, j, k) -> LPS direction
    spacing = [ps[1], ps[0], dz]   # along i, j, k
    return vol, dirs, spacing


def to_patient(vol, dirs, spacing, cross):
    """Array indexed [S][P][L] (each ascending), its spacing and the crosshair's indices in it."""
    used, order, flips = set(), [], []
    for p in (2, 1, 0):  # S, P, L
        a = max((a for a in range(3) if a not in used), key=lambda a: abs(dirs[a][p]))
        used.add(a)
        order.append(2 - a)          # numpy axis of volume axis a ([k][j][i])
        flips.append(dirs[a][p] < 0)
    arr = np.transpose(vol, order)
    sp, idx = [], []
    for n, (ax, flip) in enumerate(zip(order, flips)):
        a = 2 - ax
        size = arr.shape[n]
        if flip:
            arr = np.flip(arr, axis=n)
        sp.append(spacing[a])
        idx.append(size - 1 - cross[a] if flip else cross[a])
    return arr, sp, idx


def display(arr, sp, idx, plane):
    """The slice as the radiologist sees it: image, (column spacing, row spacing)."""
    if plane == "axial":      # rows: posterior downwards; columns: towards patient's left
        return arr[idx[0], :, :], (sp[2], sp[1])
    if plane == "coronal":    # rows: inferior downwards
        return arr[::-1, idx[1], :], (sp[2], sp[0])
    return arr[::-1, :, idx[2]], (sp[1], sp[0])  # sagittal: columns towards posterior


def sample(shot_shape, img_shape, sp, zoom=1.0, pan=(0.0, 0.0)):
    """Screenshot pixels inside the image rectangle (fitted, times zoom, moved by pan as fractions
    of the view) -> (inside mask, texel rows, texel cols)."""
    H, W = shot_shape
    nr, nc = img_shape
    pw, ph = nc * sp[0], nr * sp[1]
    scale = min(W / pw, H / ph) * zoom
    w, h = pw * scale, ph * scale
    x0, y0 = (W - w) / 2 + pan[0] * W, (H - h) / 2 + pan[1] * H
    ys, xs = np.mgrid[0:H, 0:W]
    u = (xs + 0.5 - x0) / w
    v = (ys + 0.5 - y0) / h
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    inside &= (ys >= TEXT_TOP) & (ys < H - TEXT_BOTTOM) & (xs >= EDGE) & (xs < W - EDGE)
    cols = np.clip((u * nc).astype(int), 0, nc - 1)
    rows = np.clip((v * nr).astype(int), 0, nr - 1)
    return inside, rows, cols


def window(img, center, width):
    return np.clip((img - (center - width / 2)) / width, 0, 1) * 255


def args_common(argv):
    shot = np.asarray(Image.open(argv[0]).convert("RGB")).astype(np.float64)
    vol, dirs, spacing = load_series(argv[1])
    plane = argv[2]
    cross = [int(argv[3]), int(argv[4]), int(argv[5])]
    center, width = float(argv[6]), float(argv[7])
    arr, sp, idx = to_patient(vol, dirs, spacing, cross)
    img, dsp = display(arr, sp, idx, plane)
    return shot, img, dsp, center, width, (arr, sp, idx, dirs, cross, vol.shape)


def mad(shot_gray, ref, inside, rows, cols):
    return float(np.mean(np.abs(shot_gray[inside] - ref[rows[inside], cols[inside]])))


def cmd_compare(argv):
    shot, img, dsp, center, width, _ = args_common(argv)
    gray = shot[:, :, 0]
    zoom = float(argv[8]) if len(argv) > 8 else 1.0
    pan = (float(argv[9]), float(argv[10])) if len(argv) > 10 else (0.0, 0.0)
    inside, rows, cols = sample(gray.shape, img.shape, dsp, zoom, pan)
    ref = window(img, center, width)
    good = mad(gray, ref, inside, rows, cols)
    print("%s: mean |screenshot - reference| = %.2f grey levels over %d pixels" % (argv[0], good, inside.sum()))
    status = 0
    if good > 12:
        print("FAIL: the view differs from the radiological reference (limit 12)")
        status = 1
    for name, flipped in (("left-right flipped", ref[:, ::-1]), ("up-down flipped", ref[::-1, :]),
                          ("both flipped", ref[::-1, ::-1])):
        change = float(np.mean(np.abs(ref[rows[inside], cols[inside]] - flipped[rows[inside], cols[inside]])))
        other = mad(gray, flipped, inside, rows, cols)
        print("  against the %s reference: %.2f (the flip itself changes %.2f)" % (name, other, change))
        # Were the view flipped, `other` would be about the noise and `good` about `change`.
        if change > 5 and not other - good > 0.25 * change:
            print("FAIL: the %s reference fits about as well as the correct one" % name)
            status = 1
    return status


def cmd_overlay(argv):
    shot, img, dsp, center, width, (arr, sp, idx, dirs, cross, shape) = args_common(argv)
    hidden = set() if argv[8] == "-" else {int(x) for x in argv[8].split(",")}
    nz, ny, nx = shape
    k, j, i = np.mgrid[0:nz, 0:ny, 0:nx]
    lab = np.where((i < nx // 2) & (j < ny // 2), 1, np.where((i >= nx // 2) & (j >= ny // 2), 2, 0))
    larr, _, _ = to_patient(lab.astype(np.float64), dirs, [1, 1, 1], cross)
    limg, _ = display(larr, sp, idx, argv[2])
    inside, rows, cols = sample(shot.shape[:2], img.shape, dsp)
    # keep pixels whose neighbours (one texel away) carry the same label: edges sample either side
    nr, nc = limg.shape
    same = np.ones(inside.shape, bool)
    for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        same &= limg[np.clip(rows + dr, 0, nr - 1), np.clip(cols + dc, 0, nc - 1)] == limg[rows, cols]
    # and stay clear of the crosshair lines (drawn at the crosshair's texel centre)
    labels = limg[rows, cols]
    status = 0
    colours = {1: (255, 0, 0), 2: (0, 255, 0)}
    for l in (0, 1, 2):
        sel = inside & same & (labels == l)
        n = int(sel.sum())
        if n == 0:
            print("FAIL: label %d not on this slice" % l)
            status = 1
            continue
        px = shot[sel]
        if l == 0 or l in hidden:
            ok = np.all(np.abs(px - px[:, :1]) <= 2, axis=1)  # grey: r = g = b
            what = "grey (no overlay)"
        else:
            ok = np.all(np.abs(px - np.array(colours[l])) <= 2, axis=1)
            what = "colour %s" % (colours[l],)
        frac = float(ok.mean())
        print("label %d: %.4f of %d pixels are %s" % (l, frac, n, what))
        if frac < 0.97:
            print("FAIL: expected at least 0.97")
            status = 1
    return status


def cmd_differ(argv):
    a = np.asarray(Image.open(argv[0]).convert("RGB")).astype(int)
    b = np.asarray(Image.open(argv[1]).convert("RGB")).astype(int)
    if a.shape != b.shape:
        print("FAIL: sizes differ: %s vs %s" % (a.shape, b.shape))
        return 1
    frac = float(np.any(np.abs(a - b) > 8, axis=2).mean())
    print("%s vs %s: %.3f of pixels differ (need >= %s)" % (argv[0], argv[1], frac, argv[2]))
    return 0 if frac >= float(argv[2]) else 1


if __name__ == "__main__":
    cmds = {"compare": cmd_compare, "overlay": cmd_overlay, "differ": cmd_differ}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]))
