#!/bin/sh
# The gettext wiring works end to end: po/de.po compiles into a catalog that the t3d binary
# finds (T3D_LOCALEDIR) and uses under LANGUAGE=de, and English stays the default.
set -u
t3d="$T3D_BUILDDIR/t3d"
gmo=""
for d in "$T3D_BUILDDIR/po" "$T3D_SRCDIR/po"; do
  [ -f "$d/de.gmo" ] && { gmo="$d/de.gmo"; break; }
done
[ -n "$gmo" ] || { echo "no de.gmo built (po/ not built?)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-i18n.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/de/LC_MESSAGES" && cp "$gmo" "$tmp/de/LC_MESSAGES/t3d.mo"

de=$(T3D_LOCALEDIR="$tmp" LC_ALL=C.UTF-8 LANGUAGE=de "$t3d" help)
en=$(T3D_LOCALEDIR="$tmp" LC_ALL=C.UTF-8 LANGUAGE= "$t3d" help)
fail=0
echo "$de" | grep -q "^Aufruf: t3d BEFEHL" || { echo "FAIL: German usage line missing:"; echo "$de" | head -3; fail=1; }
echo "$de" | grep -q "DICOM-Serien eines Ordners" || { echo "FAIL: German command summary missing"; fail=1; }
echo "$en" | grep -q "^Usage: t3d COMMAND" || { echo "FAIL: English default missing:"; echo "$en" | head -3; fail=1; }
err=$(T3D_LOCALEDIR="$tmp" LC_ALL=C.UTF-8 LANGUAGE=de "$t3d" info 2>&1 --bogus)
echo "$err" | grep -q "unbekannte Option" || { echo "FAIL: German error missing: $err"; fail=1; }
[ $fail = 0 ] && echo "i18n: German catalog used, English default kept"
exit $fail
