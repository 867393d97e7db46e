#!/bin/sh
# t3d-viewer with t3d-plugin.so under Xvfb (Mesa software GL), driven through the real widgets by
# the viewer's test script:
#   1. Analyze (the toolbar button) on a noise-free phantom; the worker is tests/fake-worker,
#      which returns the ground-truth labels (the bundled model is untrained, its mask means
#      nothing). With the lung class toggled off, the axial GL view's pixel at the known nodule
#      carries the lesion colour, air outside the body is unchanged, and nothing was
#      lesion-coloured before (tests/overlay-pixels-check on before/after screenshots).
#   2. Ctrl+Shift+A, then Cancel mid-run (a slow worker): the worker is gone, the panel says so,
#      Analyze is pressable again and the viewer still draws.
#   3. Preflight: a 4-slice series is refused with its reason before Analyze is offered.
# Screenshots are kept in $T3D_BUILDDIR/tests/artifacts/plugin/. Exit 77 without xvfb-run or t3d-viewer.
set -u
bd=${T3D_BUILDDIR:-.}
viewer="$bd/t3d-viewer"
command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run not installed"; exit 77; }
[ -x "$viewer" ] || { echo "SKIP: t3d-viewer not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-viewer-plugin.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
art="$bd/tests/artifacts/plugin"
mkdir -p "$art"
fail=0
# GTK, fontconfig and Mesa keep process-wide caches that LeakSanitizer reports at exit.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS

"$bd/t3d" phantom-write "$tmp/ph" --noise 0 >/dev/null || exit 1
"$bd/t3d" phantom-write "$tmp/thin" --size 64,64,4 >/dev/null || exit 1
set -- $(T3D_FAKE_WORKER_MODE=locate "$bd/tests/fake-worker" "$tmp/ph")
[ $# = 3 ] || { echo "FAIL: cannot locate the phantom's nodule"; exit 1; }
li=$1 lj=$2 lk=$3

# Display numbers from 220 up (the viewer's GUI tests use 120-199, test-plugin-host 200).
run_viewer() { # SCRIPT FOLDER MODE
  T3D_PLUGIN_PATH="$bd/plugin/.libs" T3D_WORKER="$bd/tests/fake-worker" T3D_ENGINE="$bd/t3d" \
  T3D_FAKE_WORKER_MODE="$3" XDG_CONFIG_HOME="$tmp/config" \
    timeout 180 xvfb-run -a -n 220 -s "-screen 0 1400x1000x24 -nolisten tcp" env GDK_BACKEND=x11 NO_AT_BRIDGE=1 LIBGL_ALWAYS_SOFTWARE=1 GSETTINGS_BACKEND=memory \
    "$viewer" --test-script "$1" "$2"
}

# 1. analyze, overlay pixels
# The crosshair selects the nodule's slice but stays off the nodule (its lines are drawn on top).
cat > "$tmp/analyze.script" <<SCRIPT
wait-series 60
expect-plugins 1
crosshair 56 60 $lk
frames 2
screenshot axial $tmp/before.png
wait-sensitive t3d-analyze 10
click t3d-analyze
wait-overlay 60
set t3d-class-toggle-lung 0
set t3d-opacity-scale 0.5
frames 3
screenshot axial $art/viewer-lesion-axial.png
set t3d-class-toggle-lung 1
frames 3
screenshot window $art/viewer-analyzed.png
quit 0
SCRIPT
if run_viewer "$tmp/analyze.script" "$tmp/ph" truth; then
  "$bd/tests/overlay-pixels-check" "$tmp/before.png" "$art/viewer-lesion-axial.png" 64 64 0.8 0.8 "$li" "$lj" \
    255 26 26 0.5 || fail=1 # ui/overlay-controls.c: lesion (1.0, 0.1, 0.1); opacity set to 0.5 above
  cp "$tmp/before.png" "$art/viewer-before-analysis.png"
else
  echo "FAIL: the analyze script did not finish"; fail=1
fi

# 2. cancel mid-run
cat > "$tmp/cancel.script" <<SCRIPT
wait-series 60
wait-sensitive t3d-analyze-button 10
key <Primary><Shift>a
wait-status Analyzing 20
sleep 500
click t3d-cancel-button
wait-status cancelled 10
wait-sensitive t3d-analyze-button 10
preset lung
crosshair 32 32 12
frames 3
screenshot window $art/viewer-after-cancel.png
quit 0
SCRIPT
run_viewer "$tmp/cancel.script" "$tmp/ph" slow || { echo "FAIL: the cancel script did not finish"; fail=1; }
if pgrep -f -x "$bd/tests/fake-worker analyze.*" >/dev/null 2>&1; then
  echo "FAIL: a worker outlived Cancel"; fail=1
fi

# 3. preflight refuses a 4-slice series with its reason
cat > "$tmp/preflight.script" <<SCRIPT
wait-series 60
wait-status "needs at least 8" 10
frames 2
screenshot window $art/viewer-preflight.png
quit 0
SCRIPT
out=$(run_viewer "$tmp/preflight.script" "$tmp/thin" truth 2>&1) || { echo "FAIL: the preflight script did not finish"; echo "$out"; fail=1; }

# 4. the real engine (t3d analyze, the bundled model) on the real CT, when the data is there:
#    the pipeline end to end in the viewer; the untrained model's mask means nothing, so only
#    that an overlay arrives is checked.
real="$T3D_SRCDIR/../shared/data/real-ct/chest-siemens-sensation10-8mm"
if [ -d "$real" ] && [ -f "$bd/models/t3d-tiny-init.safetensors" ]; then
  cat > "$tmp/real.script" <<SCRIPT
wait-series 60
wait-sensitive t3d-analyze 10
click t3d-analyze
wait-overlay 170
frames 3
screenshot window $art/viewer-real-ct-engine.png
quit 0
SCRIPT
  T3D_PLUGIN_PATH="$bd/plugin/.libs" T3D_ENGINE="$bd/t3d" T3D_MODEL="$bd/models/t3d-tiny-init.safetensors" \
  XDG_CONFIG_HOME="$tmp/config" timeout 240 xvfb-run -a -n 220 -s "-screen 0 1400x1000x24 -nolisten tcp" env -u T3D_WORKER \
    GDK_BACKEND=x11 NO_AT_BRIDGE=1 LIBGL_ALWAYS_SOFTWARE=1 GSETTINGS_BACKEND=memory "$viewer" --test-script "$tmp/real.script" "$real" ||
    { echo "FAIL: the real engine on the real CT gave no overlay"; fail=1; }
else
  echo "note: $real not found; real-engine run skipped"
fi

[ $fail = 0 ] && echo "viewer + plugin: lesion overlay at the nodule, Cancel leaves the viewer usable"
exit $fail
