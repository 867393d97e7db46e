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
# The main job: analyze a CT series with the bundled model. With no archive at hand, the series
# is a synthetic phantom written as real DICOM by t3d itself.
[ -d demo-series ] || ./t3d phantom-write demo-series --size 160,160,96 --spacing 1.5,1.5,2.5 --seed 7
./t3d analyze demo-series --model models/t3d-tiny-init.safetensors --mask demo-mask.nii.gz --progress
