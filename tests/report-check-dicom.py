#!/usr/bin/env python3
"""Checks t3d's exported DICOM SEG and SR with highdicom (an independent implementation) and
against DCMTK's reading (tests/report-readback output) and the expected labels.
Not a general validator: dciodvfy runs in test-report-cli.sh.

usage: report-check-dicom.py SERIES_DIR MASK.nii[.gz] SEG SR REPORT.txt SEG_READBACK SR_READBACK
Exit 0 when every check passes, 1 with each failure printed (expected and found)."""
import gzip
import struct
import sys

import numpy as np
import pydicom
import highdicom as hd

series_dir, mask_path, seg_path, sr_path, txt_path, seg_rb, sr_rb = sys.argv[1:8]
errors = []


def need(cond, msg):
    if not cond:
        errors.append(msg)


def read_nifti(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dim = struct.unpack("<8h", raw[40:56])
    dtype = struct.unpack("<h", raw[70:72])[0]
    off = int(struct.unpack("<f", raw[108:112])[0])
    nx, ny, nz = dim[1:4]
    assert dtype == 16, "mask is not float32"
    return np.frombuffer(raw, "<f4", nx * ny * nz, off).reshape(nz, ny, nx).astype(np.int64)


labels = read_nifti(mask_path)
nz, ny, nx = labels.shape

# Source instances in slice order: sorted along the slice normal (as t3d's reader does).
import os
src = []
for root, _, files in os.walk(series_dir):
    for f in files:
        ds = pydicom.dcmread(os.path.join(root, f), stop_before_pixels=True)
        iop = np.array(ds.ImageOrientationPatient, float)
        n = np.cross(iop[:3], iop[3:])
        src.append((float(np.dot(n, np.array(ds.ImagePositionPatient, float))), ds.SOPInstanceUID, ds))
src.sort(key=lambda t: t[0])
uids = [s[1] for s in src]
need(len(uids) == nz, "series has %d instances, mask %d slices" % (len(uids), nz))

# ---- SEG through highdicom ----
seg = hd.seg.segread(seg_path)
need(seg.SegmentationType == "BINARY", "SegmentationType %s" % seg.SegmentationType)
need((seg.Rows, seg.Columns) == (ny, nx), "SEG size %dx%d, series %dx%d" % (seg.Rows, seg.Columns, ny, nx))
nseg = len(seg.SegmentSequence)
classes = int(labels.max()) + 1
need(nseg >= classes - 1, "SEG has %d segments, labels go up to %d" % (nseg, classes - 1))
px = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=list(range(1, nseg + 1)),
                                       combine_segments=True, assert_missing_frames_are_empty=True)
need(px.shape == labels.shape, "highdicom pixels %r, mask %r" % (px.shape, labels.shape))
if px.shape == labels.shape:
    bad = np.argwhere(px != labels)
    need(len(bad) == 0, "highdicom SEG differs from the mask at %d voxels, first (k,j,i) %r: %d vs %d" % (
        len(bad), tuple(bad[0]) if len(bad) else None, px[tuple(bad[0])] if len(bad) else 0,
        labels[tuple(bad[0])] if len(bad) else 0))
ref_series = {s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence}
need(ref_series == {src[0][2].SeriesInstanceUID}, "SEG references series %r" % ref_series)
ref_inst = {i.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
need(ref_inst == set(uids), "SEG references %d of %d source instances" % (len(ref_inst & set(uids)), len(uids)))
need(seg.StudyInstanceUID == src[0][2].StudyInstanceUID, "SEG study UID differs from the source")

# ---- SEG through DCMTK (report-readback) ----
hd_segments = []
for s in seg.SegmentSequence:
    hd_segments.append("segment %d %s %s %s" % (s.SegmentNumber, s.SegmentLabel,
                                                  s.SegmentedPropertyTypeCodeSequence[0].CodeValue,
                                                  s.SegmentedPropertyCategoryCodeSequence[0].CodeValue))
rb = open(seg_rb).read().splitlines()
need([l for l in rb if l.startswith("segment ")] == hd_segments,
     "DCMTK segments %r, highdicom %r" % ([l for l in rb if l.startswith("segment ")], hd_segments))
frames = [l.split() for l in rb if l.startswith("frame ")]
need(len(frames) == int(seg.NumberOfFrames), "DCMTK reads %d frames, highdicom %d" % (len(frames),
                                                                                     int(seg.NumberOfFrames)))
for f in frames:
    _, idx, segno, ref, x, y, z, on = f
    segno = int(segno)
    k = uids.index(ref) if ref in uids else -1
    need(k >= 0, "DCMTK frame %s references %s, not a source instance" % (idx, ref))
    if k < 0:
        continue
    ipp = np.array(src[k][2].ImagePositionPatient, float)
    need(np.allclose(ipp, [float(x), float(y), float(z)], atol=1e-3),
         "frame %s position %s,%s,%s, its source lies at %r" % (idx, x, y, z, ipp))
    if on != "-":
        want = int((labels[k] == segno).sum())
        need(int(on) == want, "DCMTK frame %s (segment %d, slice %d): %s pixels on, mask %d" % (idx, segno, k, on, want))

# ---- SR through highdicom ----
sr = hd.sr.srread(sr_path)
need(sr.VerificationFlag == "UNVERIFIED", "SR VerificationFlag %s" % sr.VerificationFlag)
need(sr.CompletionFlag == "PARTIAL", "SR CompletionFlag %s" % sr.CompletionFlag)
need(sr.ContentTemplateSequence[0].TemplateIdentifier == "1500", "SR template %r" % sr.ContentTemplateSequence)
need(sr.StudyInstanceUID == src[0][2].StudyInstanceUID, "SR study UID differs from the source")
need(str(sr.PatientName) == str(src[0][2].PatientName), "SR patient %r, source %r" % (str(sr.PatientName),
                                                                                       str(src[0][2].PatientName)))
need(str(seg.PatientName) == str(src[0][2].PatientName), "SEG patient %r, source %r" % (str(seg.PatientName),
                                                                                         str(src[0][2].PatientName)))
evidence = {i.ReferencedSOPInstanceUID for s in sr.CurrentRequestedProcedureEvidenceSequence
            for se in s.ReferencedSeriesSequence for i in se.ReferencedSOPSequence}
need(evidence == set(uids), "SR evidence lists %d of %d source instances" % (len(evidence & set(uids)), len(uids)))


def walk(items, out):
    for it in items:
        name = it.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in it else ""
        if it.ValueType == "TEXT":
            out.append("TEXT %s|%s" % (name, it.TextValue.replace("\n", "~").replace("\r", "~")))
        elif it.ValueType == "NUM":
            mv = it.MeasuredValueSequence[0]
            out.append("NUM %s|%s %s" % (name, mv.NumericValue, mv.MeasurementUnitsCodeSequence[0].CodeValue))
        if "ContentSequence" in it:
            walk(it.ContentSequence, out)


hd_items = []
walk(sr.ContentSequence, hd_items)
dcmtk_items = [l for l in open(sr_rb).read().splitlines() if l.startswith(("TEXT ", "NUM "))]
need(hd_items == dcmtk_items, "SR items differ:\n  highdicom %r\n  DCMTK     %r" % (hd_items, dcmtk_items))

# TID 1500 structure as highdicom parses it: one measurement group per class, volumes as written.
groups = sr.content.get_image_measurement_groups()
vols = {}
for g in groups:
    for m in g.get_measurements():
        vols[g.tracking_identifier] = (m.name.meaning, m.value, m.unit.value)
text = open(txt_path, encoding="utf-8").read()
findings = text.split("FINDINGS\n", 1)[1].split("\nIMPRESSION\n", 1)
need(("TEXT Findings|" + findings[0].replace("\n", "~")) in hd_items, "SR Findings text differs from report.txt")
need(("TEXT Impression|" + findings[1].replace("\n", "~")) in hd_items, "SR Impression text differs from report.txt")
for line in findings[0].splitlines():
    if line.endswith(" mL.") and " volume: " in line:
        organ = line[2:].split(" volume: ")[0].lower()
        ml = float(line.split(" volume: ")[1].split()[0])
        got = vols.get(organ + " volume")
        need(got is not None and got[0] == "Volume" and abs(float(got[1]) - ml) < 1e-9 and got[2] == "cm3",
             "SR volume of %s: %r, report.txt %.1f mL" % (organ, got, ml))
for item in hd_items:
    if item.startswith("TEXT Finding|") and "probability" in item:
        name, rest = item[len("TEXT Finding|"):].split(": probability ")
        p = rest.split(",")[0]
        need(name.lower() in text.lower() and p in text, "SR finding %s %s not in report.txt" % (name, p))
    if line.startswith("- Lesions: ") and "largest diameter" in line:
        mm = float(line.split("largest diameter ")[1].split()[0])
        got = vols.get("largest lesion")
        need(got is not None and got[0] == "Diameter" and abs(float(got[1]) - mm) < 1e-9 and got[2] == "mm",
             "SR largest lesion diameter %r, report.txt %.1f mm" % (got, mm))
        count = int(line.split()[2])
        need("TEXT Finding|lesion count: %d" % count in hd_items, "SR lesion count differs from %d" % count)
need(any("SHA-256" in i for i in hd_items), "SR lacks the model hash")

for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
