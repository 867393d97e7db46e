#!/bin/sh
# Installs every Debian package t3d needs to build, test and run (idempotent).
# Not a build step: it only asks apt-get for what is missing; CUDA/cuDNN come from /usr/local/cuda.
set -eu

# libsndfile1-dev, libtiff-dev, libssl-dev: only so that pkg-config accepts dcmtk.pc (Requires.private).
PKGS="build-essential autoconf automake libtool autopoint gettext pkg-config
  libdcmtk-dev dcmtk libopenjp2-7-dev libsndfile1-dev libtiff-dev libssl-dev libwrap0-dev libgtk-3-dev libepoxy-dev libsqlite3-dev sqlite3
  libjansson-dev libopenblas-dev zlib1g-dev
  clang libclang-rt-14-dev
  python3 python3-numpy python3-torch python3-venv
  dicom3tools dcm2niix xvfb xauth libgl1-mesa-dri"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing
else
  echo "install-deps: all Debian packages present"
fi

# Python for the parity tests: Debian's interpreter (it has python3-torch), in a venv that
# sees the system site packages, plus the pinned PyPI packages of tools/requirements-test.txt.
top=$(cd "$(dirname "$0")/.." && pwd)
venv="$top/.venv"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
stamp="$venv/.requirements-installed"
if ! cmp -s "$top/tools/requirements-test.txt" "$stamp" 2>/dev/null; then
  if grep -q '^[^#[:space:]]' "$top/tools/requirements-test.txt"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$top/tools/requirements-test.txt"
  fi
  cp "$top/tools/requirements-test.txt" "$stamp"
fi
