"""PNG overlay of a label mask on CT slices, for looking at what the model segments (the real-CT
check of issue 7): reads the series and the mask as NIfTI (`t3d volume SERIES --nifti`,
`t3d analyze SERIES --mask`), draws a few slices side by side with class colours and a legend.
  python -m train.overlay --ct ct.nii.gz --mask mask.nii.gz --classes a,b,.. --slices 8,15,22 -o out.png
Not a viewer."""
import argparse
import gzip
import struct

import numpy as np
from PIL import Image, ImageDraw

COLOURS = [None, (255, 200, 80), (80, 160, 255), (255, 60, 60), (170, 90, 255), (60, 220, 120),
           (255, 120, 200), (240, 240, 240), (255, 255, 0)]
NIFTI_DTYPES = {2: "u1", 4: "<i2", 8: "<i4", 16: "<f4", 64: "<f8", 256: "i1", 512: "<u2", 768: "<u4"}


def read_nifti(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dim = struct.unpack("<8h", raw[40:56])
    dtype = struct.unpack("<h", raw[70:72])[0]
    off = int(struct.unpack("<f", raw[108:112])[0])
    slope, inter = struct.unpack("<2f", raw[112:120])
    nx, ny, nz = dim[1], dim[2], dim[3]
    a = np.frombuffer(raw[off:off + nx * ny * nz * np.dtype(NIFTI_DTYPES[dtype]).itemsize],
                      dtype=NIFTI_DTYPES[dtype]).astype(np.float32).reshape(nz, ny, nx)
    if slope:
        a = a * slope + inter
    return a


def render(ct, mask, classes, slices, out, window=(-1000, 400), alpha=0.45, width=320):
    tiles = []
    for k in slices:
        img = np.clip((ct[k] - window[0]) / (window[1] - window[0]), 0, 1) * 255
        rgb = np.stack([img] * 3, axis=-1)
        m = mask[k].astype(int)
        for c in range(1, len(classes)):
            col = COLOURS[c % len(COLOURS)]
            sel = m == c
            if col and sel.any():
                rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.array(col)
        tile = Image.fromarray(rgb.astype(np.uint8)).resize((width, width * ct.shape[1] // ct.shape[2]))
        ImageDraw.Draw(tile).text((4, 4), f"slice {k}", fill=(255, 255, 255))
        tiles.append(tile)
    h = tiles[0].height
    legend_h = 20
    sheet = Image.new("RGB", (width * len(tiles), h + legend_h), (0, 0, 0))
    for i, t in enumerate(tiles):
        sheet.paste(t, (i * width, 0))
    d = ImageDraw.Draw(sheet)
    x = 4
    for c in range(1, len(classes)):
        d.rectangle([x, h + 5, x + 10, h + 15], fill=COLOURS[c % len(COLOURS)])
        d.text((x + 14, h + 4), classes[c], fill=(255, 255, 255))
        x += 16 + 7 * len(classes[c]) + 8
    sheet.save(out, optimize=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ct", required=True)
    ap.add_argument("--mask", required=True)
    ap.add_argument("--classes", required=True, help="comma-separated class names, background first")
    ap.add_argument("--slices", required=True, help="comma-separated slice indices (z)")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    render(read_nifti(a.ct), read_nifti(a.mask), a.classes.split(","), [int(s) for s in a.slices.split(",")],
           a.output)


if __name__ == "__main__":
    main()
