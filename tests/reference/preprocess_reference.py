"""PyTorch reference for t3d's resample step: F.interpolate(mode='trilinear',
align_corners=False) on the volume written by tests/preprocess-parity-tool, compared with t3d's
output. Valid only for scale-consistent sizes (out = in * s / t exactly), where t3d's
centre-keeping mapping and PyTorch's coincide (see core/model/preprocess.h).

usage: preprocess_reference.py DIR   (exit 0 pass, 1 fail, 77 torch missing)"""
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print("skip: %s" % e)
    sys.exit(77)

TOL = 1e-5


def main(d):
    with open(d + "/meta.txt") as f:
        nz, ny, nx, oz, oy, ox = (int(v) for v in f.read().split())
    x = np.fromfile(d + "/input.f32", dtype="<f4").reshape(1, 1, nz, ny, nx)
    got = np.fromfile(d + "/output.f32", dtype="<f4").reshape(oz, oy, ox)
    ref = F.interpolate(torch.from_numpy(x), size=(oz, oy, ox), mode="trilinear",
                        align_corners=False)[0, 0].numpy()
    # Relative to the volume's magnitude (max |ref|), not per voxel: both sides round in float,
    # and PyTorch even computes its scale in/out in float (an index error of ~1e-7 * index), so a
    # voxel that interpolates +700 and -700 HU to ~2 HU legitimately differs by ~1e-4 HU.
    diff = np.abs(got.astype(np.float64) - ref)
    rel = diff.max() / np.abs(ref).max()
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    print("in %dx%dx%d -> out %dx%dx%d (z,y,x): max |diff| %.3g HU at %s (t3d %.6f, torch %.6f), "
          "max |ref| %.1f, max rel err %.3g (tol %g)"
          % (nz, ny, nx, oz, oy, ox, diff.max(), worst, got[worst], ref[worst], np.abs(ref).max(), rel, TOL))
    return 0 if rel <= TOL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
