#!/bin/sh
# Runs tests/plugin-host-check (t3d-plugin.so in a minimal host: analyze, overlay, cancel,
# crash, search, cleanup) under a virtual X display. Exit 77 (SKIP) without xvfb-run.
set -e
command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run not installed"; exit 77; }
# GTK, fontconfig and Mesa keep process-wide caches that LeakSanitizer reports at exit; leaks of
# our own code are covered by the display-less tests.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS
exec xvfb-run -a -s "-screen 0 1280x1024x24" env GDK_BACKEND=x11 NO_AT_BRIDGE=1 \
  "${T3D_BUILDDIR:-.}/tests/plugin-host-check"
