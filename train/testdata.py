"""A tiny phantom folder in the manifest format of `t3d phantom` (manifest.jsonl, DICOM series,
labels.nii.gz on the series grid, reports), built from `t3d phantom-write` volumes with labels
from HU thresholds, for the trainer's tests: seconds to make, independent of the full generator.
Not training data. Usage: python -m train.testdata T3D OUT_DIR COUNT"""
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np

REPORTS = ["FINDINGS: small pulmonary nodule in the right lower lobe. IMPRESSION: pulmonary nodule.",
           "FINDINGS: the lungs are clear. no pulmonary nodule. IMPRESSION: normal chest ct.",
           "FINDINGS: moderate right pleural effusion. IMPRESSION: pleural effusion.",
           "FINDINGS: no effusion. the heart is enlarged. IMPRESSION: cardiomegaly."]


def make(t3d, out, count):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "manifest.jsonl"), "w") as man:
        for i in range(count):
            case = f"case-{i:05d}"
            d = os.path.join(out, case)
            os.makedirs(d, exist_ok=True)
            hu_path = os.path.join(d, "hu.nii")
            size = "%d,%d,%d" % (72 + 4 * (i % 3), 76, 30 + i % 4)
            subprocess.run([t3d, "phantom-write", os.path.join(d, "dicom"), "--size", size, "--spacing",
                            "4.5,4.2,6", "--seed", str(i + 1), "--nifti", hu_path], check=True,
                           stdout=subprocess.DEVNULL)
            raw = bytearray(open(hu_path, "rb").read())
            off = int(struct.unpack("<f", raw[108:112])[0])
            hu = np.frombuffer(bytes(raw[off:]), dtype="<f4")
            lab = np.zeros_like(hu)
            lab[hu > -500] = 1
            lab[(hu < -700) & (hu > -950)] = 2
            lab[hu > 300] = 7
            raw[off:] = lab.astype("<f4").tobytes()
            with gzip.open(os.path.join(d, "labels.nii.gz"), "wb") as f:
                f.write(bytes(raw))
            os.unlink(hu_path)
            rep = REPORTS[i % len(REPORTS)]
            truth = {"pulmonary nodule": {"present": i % 4 == 0}, "pleural effusion": {"present": i % 4 == 2},
                     "cardiomegaly": {"present": i % 4 == 3}}
            man.write(json.dumps({"case": case, "seed": i + 1, "series": case + "/dicom",
                                  "labels": case + "/labels.nii.gz", "report": rep, "truth": truth}) + "\n")
    with open(os.path.join(out, "labels.json"), "w") as f:
        json.dump({"classes": ["background", "body", "lung", "heart", "liver", "spleen", "kidney", "bone",
                               "lesion"]}, f)


if __name__ == "__main__":
    make(sys.argv[1], sys.argv[2], int(sys.argv[3]))
