#!/bin/sh
# Checks `t3d info DIR` (table and --json) on a generated folder: the series row, the notes for
# the localizer and the text file, --load, exit codes, and the error naming a missing path.
set -u
B=${T3D_BUILDDIR:-.}
T3D="$B/t3d"
dir=$(mktemp -d "${TMPDIR:-/tmp}/t3d-info-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...
  what=$1; shift
  if ! "$@"; then echo "FAIL: $what"; fail=1; fi
}
"$B/tests/dicom-testgen-cli" "$dir" || { echo "FAIL: generator"; exit 1; }

out=$("$T3D" info "$dir"); rc=$?
echo "$out"
check "exit 0 with a series (got $rc)" test "$rc" -eq 0
check "table lists the series UID" sh -c 'printf "%s" "$1" | grep -q "CT   1.2.826.0.1.3680043.10.1.1 "' x "$out"

out=$("$T3D" info --load "$dir"); rc=$?
echo "$out"
check "--load exit 0 (got $rc)" test "$rc" -eq 0
check "--load reports the volume" sh -c 'printf "%s" "$1" | grep -q "0: ok, 10x8x3 voxels, spacing 0.5 x 0.5 x 2.5 mm"' x "$out"
check "table shows 3 instances, 10x8x3" sh -c 'printf "%s" "$1" | grep -q " 3 10x8x3"' x "$out"
check "note: localizer" sh -c 'printf "%s" "$1" | grep -q "scout.dcm: localizer"' x "$out"
check "note: not DICOM" sh -c 'printf "%s" "$1" | grep -q "notes.txt: not DICOM, skipped"' x "$out"

json=$("$T3D" info --json --load "$dir"); rc=$?
check "--json exit 0 (got $rc)" test "$rc" -eq 0
py=${T3D_PYTHON:-python3}
check "--json fields" "$py" -c '
import json, sys
d = json.loads(sys.argv[1])
s = d["series"]
assert len(s) == 1, s
s = s[0]
want = {"modality": "CT", "series_uid": "1.2.826.0.1.3680043.10.1.1", "instances": 3, "slices": 3,
        "rows": 8, "cols": 10, "patient_name": "Test^Patient", "study_date": "20240102"}
for k, v in want.items():
    assert s[k] == v, (k, s[k], v)
assert any("localizer" in n for n in d["notes"]), d["notes"]
assert d["files"] == 5, d["files"]
assert s["load"]["ok"] is True, s["load"]
' "$json"

err=$("$T3D" info "$dir/nonexistent" 2>&1); rc=$?
check "missing path fails (got $rc)" test "$rc" -eq 1
check "error names the path" sh -c 'printf "%s" "$1" | grep -q "nonexistent"' x "$err"
"$T3D" info --help >/dev/null; rc=$?
check "--help exits 0 (got $rc)" test "$rc" -eq 0
exit $fail
