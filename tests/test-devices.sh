#!/bin/sh
# `t3d devices --json` reports the CPU and, in a CUDA build, a device count that agrees with
# nvidia-smi where the driver is present. Checks the command, not the hardware.
set -eu
t3d="$T3D_BUILDDIR/t3d"
out=$("$t3d" devices --json)
echo "$out"
py=${T3D_PYTHON:-python3}
printf '%s' "$out" | "$py" -c '
import json, sys, shutil, subprocess
d = json.load(sys.stdin)
assert d["cpu_cores"] >= 1, d
assert d["backend"] in ("cpu", "cuda"), d
assert (d["backend"] == "cuda") == (len(d["gpus"]) > 0), d
if d["cuda_built"]:
    assert d["cuda_runtime_version"] >= 11000, d
    assert d["cudnn_version"] >= 8000, d
    if shutil.which("nvidia-smi"):
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        n = sum(1 for l in r.stdout.splitlines() if l.startswith("GPU "))
        assert n == len(d["gpus"]), ("nvidia-smi lists", n, "t3d lists", len(d["gpus"]))
print("devices: ok")
'
# cuBLAS is opened by the CUDA backend when one starts, not when libt3d loads (with the
# libcublasLt it needs it raised every process's peak memory by ~150 MiB, CPU runs included).
if LD_DEBUG=libs "$t3d" version 2>&1 >/dev/null | grep -q "calling init: .*libcublas"; then
  echo "FAIL: a CPU command (t3d version) loaded libcublas"
  exit 1
fi
echo "cuBLAS not loaded by a CPU command: ok"
