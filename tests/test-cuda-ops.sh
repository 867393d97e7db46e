#!/bin/sh
# Every op of the CUDA backend against the CPU backend on fresh random data, in fp32 and tf32
# (tests/test-cuda-ops.c; seed printed). SKIP (77) without a usable GPU.
set -u
build=${T3D_BUILDDIR:-.}
"$build/tests/test-cuda-ops" --precision fp32
rc=$?
[ $rc -eq 77 ] && exit 77
"$build/tests/test-cuda-ops" --precision tf32 || rc=1
exit $rc
