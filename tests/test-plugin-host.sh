#!/bin/sh
# Runs tests/plugin-host-check (t3d-plugin.so in a minimal host: analyze, overlay, cancel,
# crash, search, cleanup) under a virtual X display. Exit 77 (SKIP) without xvfb-run.
set -e
command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run not installed"; exit 77; }
# GTK, fontconfig and Mesa keep process-wide caches that LeakSanitizer reports at exit; leaks of
# our own code are covered by the display-less tests.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS
# Display numbers from 200 up: the viewer's GUI tests use 120-199, so make -j does not race.
exec xvfb-run -a -n 200 -s "-screen 0 1280x1024x24 -nolisten tcp" env GDK_BACKEND=x11 NO_AT_BRIDGE=1 LIBGL_ALWAYS_SOFTWARE=1 GSETTINGS_BACKEND=memory \
  "${T3D_BUILDDIR:-.}/tests/plugin-host-check"
