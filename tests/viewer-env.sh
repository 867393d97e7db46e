# Sourced by the t3d-viewer GUI tests: finds Xvfb and the checker's Python, runs the viewer
# under Xvfb with Mesa's software GL, keeps screenshots under $ART. Not a test by itself.
SRC=${T3D_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
VIEWER="$BUILD/t3d-viewer"
CHECK="$SRC/tests/viewer_check.py"
if ! command -v xvfb-run >/dev/null 2>&1 || ! command -v Xvfb >/dev/null 2>&1; then
  echo "SKIP: xvfb-run/Xvfb not installed (./tools/install-deps.sh installs xvfb, xauth)"
  exit 77
fi
if ! "$PY" -c 'import numpy, pydicom, PIL' >/dev/null 2>&1; then
  echo "SKIP: $PY cannot import numpy, pydicom and PIL (./tools/install-deps.sh)"
  exit 77
fi
# GDK_BACKEND=x11: GtkGLArea on Xvfb gets a Mesa llvmpipe core context (GLX).
export GDK_BACKEND=x11 LIBGL_ALWAYS_SOFTWARE=1 NO_AT_BRIDGE=1 GSETTINGS_BACKEND=memory
# GTK, fontconfig and Mesa keep caches for the life of the process; LeakSanitizer would report
# them as leaks of t3d-viewer. Memory errors are still caught.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# Screenshots are test artifacts, kept after the run (CI uploads tests/artifacts/).
ART="$BUILD/tests/artifacts/viewer"
mkdir -p "$ART"
fail=0
# Each test searches for a free display from its own number, so that tests run in parallel
# (make -j) do not race for the same one.
XVFB_FIRST=${XVFB_FIRST:-120}

# run_viewer NAME SCRIPT_TEXT [VIEWER ARGS...]: stdout/stderr in $ART/NAME.out / NAME.err.
run_viewer() {
  name=$1
  shift
  printf '%s\n' "$1" > "$ART/$name.script"
  shift
  timeout 180 xvfb-run -a -n "$XVFB_FIRST" -s "-screen 0 1400x900x24 -nolisten tcp" \
    "$VIEWER" --test-script "$ART/$name.script" "$@" > "$ART/$name.out" 2> "$ART/$name.err"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL: t3d-viewer ($name) exited $rc"
    cat "$ART/$name.out" "$ART/$name.err"
    fail=1
  fi
  return $rc
}

check() { # viewer_check.py arguments
  "$PY" "$CHECK" "$@" || fail=1
}
