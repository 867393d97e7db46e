#!/bin/sh
# One command from a fresh Debian 12 machine to a working t3d: installs the packages,
# configures, builds into _build/, and runs the main job. Safe to run again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
./tools/install-deps.sh
[ -x configure ] || autoreconf -fi
mkdir -p _build
cd _build
[ -f Makefile ] || ../configure
make -j"$(nproc)"
# The main job: describe the model file the build made.
./t3d model-info models/t3d-tiny-init.safetensors
