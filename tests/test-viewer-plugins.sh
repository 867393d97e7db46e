#!/bin/sh
# t3d-viewer's plugin loader and host services: of three test plugins only the one with the right
# ABI loads; the one built for another ABI and the one needing a newer API are refused with a
# message naming the file and both versions (stderr and an info bar). The probe plugin's
# second copy in a later folder is skipped (the user's folder overrides the system's). Its
# toolbar button and its menu accelerator (Ctrl+Shift+P) draw a label overlay whose pixels carry
# exactly the colour-table colours (nearest sampling, opacity 1) where the labels are, grey
# elsewhere; hiding one label restores grey there; F1 opens the shortcuts window; Ctrl+Q quits
# and the plugin's cleanup runs. $XDG_DATA_HOME/t3d/plugins is searched. The refusal is translated (a German test catalog). SKIP without Xvfb.
XVFB_FIRST=180
. "$(dirname "$0")/viewer-env.sh"
T3D="$BUILD/t3d"
LIBS="$BUILD/tests/.libs"
for p in plugin-probe plugin-wrong-abi plugin-too-new-api; do
  [ -f "$LIBS/$p.so" ] || { echo "FAIL: $LIBS/$p.so not built"; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/t3d-viewer-plugins.XXXXXX") || exit 1
"$T3D" phantom-write "$work/ph" --size 90,70,30 --spacing 1.5,1.5,3 > /dev/null || exit 1
mkdir -p "$work/second-folder" && cp "$LIBS/plugin-probe.so" "$work/second-folder/"
T3D_PLUGIN_PATH="$LIBS/plugin-wrong-abi.so:$LIBS/plugin-probe.so:$LIBS/plugin-too-new-api.so:$work/second-folder" \
  run_viewer plugins "wait-series 60
expect-plugins 1
print plugins
wait-infobar plugin-wrong-abi.so 10
wait-infobar plugin-too-new-api.so 10
print position
key <Primary><Shift>p
wait-status \"probe: overlay set\" 10
frames 1
screenshot axial $ART/plugins-overlay-axial.png
click t3d-probe-hide2
wait-status \"probe: label 2 hidden\" 10
frames 1
screenshot axial $ART/plugins-overlay-hidden2-axial.png
screenshot window $ART/plugins-window.png
key F1
sleep 300
key <Primary>q" "$work/ph"
out="$ART/plugins.out" err="$ART/plugins.err"
grep -q "^plugin: probe 1.0" "$out" || { echo "FAIL: probe plugin not listed"; fail=1; }
grep -q "second-folder/plugin-probe.so: skipped" "$err" || { echo "FAIL: second copy of the probe not skipped"; fail=1; }
grep -q "probe: cleanup after 1 series" "$out" || { echo "FAIL: probe cleanup did not run"; fail=1; }
if ! grep "plugin-wrong-abi.so" "$err" | grep -q "ABI 2.*ABI 1"; then
  echo "FAIL: wrong-ABI refusal missing or without versions:"; cat "$err"; fail=1
fi
if ! grep "plugin-too-new-api.so" "$err" | grep -q "API 2 or newer.*API 1"; then
  echo "FAIL: too-new-API refusal missing or without versions:"; cat "$err"; fail=1
fi
set -- $(sed -n 's/^crosshair: //p' "$out")
if [ $# -eq 3 ]; then
  check overlay "$ART/plugins-overlay-axial.png" "$work/ph" axial "$1" "$2" "$3" 40 400 -
  check overlay "$ART/plugins-overlay-hidden2-axial.png" "$work/ph" axial "$1" "$2" "$3" 40 400 2
else
  echo "FAIL: no crosshair printed"; fail=1
fi
# Without T3D_PLUGIN_PATH the user's folder ($XDG_DATA_HOME/t3d/plugins) is searched.
mkdir -p "$work/xdg/t3d/plugins" && cp "$LIBS/plugin-probe.so" "$work/xdg/t3d/plugins/"
(unset T3D_PLUGIN_PATH; XDG_DATA_HOME="$work/xdg" run_viewer plugins-xdg "print plugins
quit") || fail=1
grep -q "^plugin: probe 1.0" "$ART/plugins-xdg.out" || { echo "FAIL: probe not loaded from \$XDG_DATA_HOME/t3d/plugins"; fail=1; }

# The refusal is translatable: with a German test catalog for the "t3d" domain it reads German.
if command -v msgfmt >/dev/null 2>&1; then
  mkdir -p "$work/locale/de/LC_MESSAGES"
  msgfmt -o "$work/locale/de/LC_MESSAGES/t3d.mo" "$SRC/tests/viewer-refusal-de.po" || fail=1
  T3D_LOCALEDIR="$work/locale" LC_ALL=C.UTF-8 LANGUAGE=de T3D_PLUGIN_PATH="$LIBS/plugin-wrong-abi.so" \
    run_viewer plugins-de "expect-plugins 0
wait-infobar abgelehnt 10
quit"
  grep -q "plugin-wrong-abi.so wurde abgelehnt: Es wurde für Plugin-ABI 2 erstellt.*Plugin-ABI 1" "$ART/plugins-de.err" ||
    { echo "FAIL: German refusal missing:"; cat "$ART/plugins-de.err"; fail=1; }
fi
rm -rf "$work"
exit $fail
