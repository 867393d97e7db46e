#!/bin/sh
# Runs every t3d test: installs the packages, builds with AddressSanitizer + UBSan into
# _build-check/, and runs `make check` (unit, parity against PyTorch, corrupt-input tests).
# Tests that need a GPU skip (exit 77) where there is none. Safe to run again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
./tools/install-deps.sh
[ -x configure ] || autoreconf -fi
mkdir -p _build-check
cd _build-check
[ -f Makefile ] || ../configure --enable-sanitizers
make -j"$(nproc)"
make -j"$(nproc)" check
