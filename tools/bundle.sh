#!/bin/sh
# A relocatable bundle of a built t3d, for a machine that has a GPU (or AMX) but not t3d's build
# dependencies (DCMTK, OpenBLAS, jansson... development packages): the t3d program, libt3d, the
# GPU and bf16 test programs, every shared library they load that is not the C library itself,
# and DCMTK's data dictionaries. Its build/ folder stands in for a build tree: build/t3d and
# build/tests/* are wrappers that set LD_LIBRARY_PATH and DCMDICTPATH, so the test scripts run
# against it with T3D_BUILDDIR=BUNDLE/build (tools/gpu-check.sh: GPU_CHECK_BUILD=BUNDLE/build).
# On the target, the host's own CUDA libraries come first (cuDNN, cuBLAS and the CUDA runtime
# from Python's nvidia-* packages where importable, then /usr/local/cuda/lib64); the copies of
# libcudart and the cuDNN loader taken from this machine (lib/cuda/) are the last resort.
#
# Usage: tools/bundle.sh [-b BUILD] OUT          (BUILD default: _build; OUT: a new folder)
#        tools/bundle.sh [-b BUILD] OUT.tar.xz   (the same folder, compressed: ~21 MB)
# Then, on the target: tar -xJf OUT.tar.xz -C DIR; DIR/OUT/build/t3d devices
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/_build
if [ "${1:-}" = -b ]; then
  build=$2
  shift 2
fi
[ $# -eq 1 ] || { echo "usage: tools/bundle.sh [-b BUILD] OUT|OUT.tar.xz" >&2; exit 2; }
case $1 in
*.tar.xz) out=${1%.tar.xz} tarball=$1 ;;
*) out=$1 tarball= ;;
esac
[ -x "$build/.libs/t3d" ] && [ -f "$build/.libs/libt3d.so.0" ] ||
  { echo "tools/bundle.sh: $build has no built t3d (.libs/t3d, .libs/libt3d.so.0): run make first" >&2; exit 1; }
[ -e "$out" ] && { echo "tools/bundle.sh: $out exists" >&2; exit 1; }
dict=$(ls -d /usr/share/libdcmtk*/dicom.dic 2>/dev/null | head -n 1)
[ -n "$dict" ] || { echo "tools/bundle.sh: DCMTK's dicom.dic not found under /usr/share/libdcmtk*" >&2; exit 1; }

mkdir -p "$out/lib/cuda" "$out/share/dcmtk" "$out/build/tests" "$out/build/.libs"
progs="t3d"
cp "$build/.libs/t3d" "$out/lib/"
for t in test-cuda-ops test-ops-parity test-bf16 test-bf16-model; do
  if [ -x "$build/tests/.libs/$t" ]; then
    cp "$build/tests/.libs/$t" "$out/lib/"
    progs="$progs tests/$t"
  fi
done
cp -L "$build/.libs/libt3d.so.0" "$out/lib/"
ln -s ../../lib/libt3d.so.0 "$out/build/.libs/libt3d.so"
# every library the programs load, but the C library's own parts (the target has its own, and
# they must match its loader) and the GPU driver (it comes with the GPU)
ldd "$build/.libs/t3d" "$build/.libs/libt3d.so.0" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  while read -r lib; do
    name=${lib##*/}
    case $name in
    libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | ld-linux*.so.* | libcuda.so.*) ;;
    libcudart.so.* | libcudnn.so.* | libcublas*.so.*) cp -L "$lib" "$out/lib/cuda/" ;;
    *) cp -L "$lib" "$out/lib/" ;;
    esac
  done
cp "$(dirname "$dict")/dicom.dic" "$out/share/dcmtk/"
[ -f "$(dirname "$dict")/private.dic" ] && cp "$(dirname "$dict")/private.dic" "$out/share/dcmtk/"

for p in $progs; do
  up=..
  case $p in tests/*) up=../.. ;; esac
  cat >"$out/build/$p" <<EOF
#!/bin/sh
# $p from a t3d bundle (tools/bundle.sh): the host's CUDA libraries first, then the bundle's
here=\$(cd "\$(dirname "\$0")/$up" && pwd)
cuda=
for d in \$(python3 -c 'import importlib
for m in ("nvidia.cudnn", "nvidia.cublas", "nvidia.cuda_runtime"):
    try:
        print(list(importlib.import_module(m).__path__)[0] + "/lib")
    except Exception:
        pass' 2>/dev/null) /usr/local/cuda/lib64; do
  [ -d "\$d" ] && cuda="\$cuda\$d:"
done
dict=\$here/share/dcmtk/dicom.dic
[ -f "\$here/share/dcmtk/private.dic" ] && dict="\$dict:\$here/share/dcmtk/private.dic"
LD_LIBRARY_PATH="\$cuda\$here/lib:\$here/lib/cuda\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" \\
  DCMDICTPATH="\${DCMDICTPATH:-\$dict}" exec "\$here/lib/${p##*/}" "\$@"
EOF
  chmod +x "$out/build/$p"
done
echo "bundle: $out ($(du -sh "$out" | cut -f1); programs: $progs)"
if [ -n "$tarball" ]; then
  tar -C "$(dirname "$out")" -cf - "$(basename "$out")" | xz -T0 -6 >"$tarball"
  rm -rf "$out"
  echo "bundle: $tarball ($(du -h "$tarball" | cut -f1))"
fi
