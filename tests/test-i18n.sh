#!/bin/sh
# The gettext wiring works end to end: po/de.po, po/fr.po and po/es.po compile into catalogs
# that the t3d binary finds (T3D_LOCALEDIR) and uses under LANGUAGE=de|fr|es (CLI messages,
# finding and organ names), and English stays the default. Not a check of completeness
# (tests/test-po.sh) or of the wording.
set -u
t3d="$T3D_BUILDDIR/t3d"
fail=0
command -v msgfmt >/dev/null 2>&1 || { echo "SKIP: msgfmt (gettext) not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-i18n.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
# Compiled here from po/LL.po, as the build does, so a stale po/LL.gmo cannot hide an edit.
for l in de fr es; do
  mkdir -p "$tmp/$l/LC_MESSAGES"
  msgfmt -c -o "$tmp/$l/LC_MESSAGES/t3d.mo" "$T3D_SRCDIR/po/$l.po" || { echo "FAIL: po/$l.po does not compile"; fail=1; }
done

# expect LANG PATTERN WHAT ARGS...: the output of `t3d ARGS` (stdout and stderr) under
# LANGUAGE=LANG has a line matching PATTERN.
expect() {
  l=$1 pat=$2 what=$3; shift 3
  out=$(T3D_LOCALEDIR="$tmp" LC_ALL=C.UTF-8 LANGUAGE="$l" "$t3d" "$@" 2>&1)
  if ! printf '%s\n' "$out" | grep -q -- "$pat"; then
    echo "FAIL: ${l:-en} $what: no line matching '$pat' in:"; printf '%s\n' "$out" | head -4; fail=1
  fi
}
expect de '^Aufruf: t3d BEFEHL' "usage line" help
expect de 'DICOM-Serien eines Ordners' "command summary" help
expect de 'unbekannte Option »--bogus«' "error" info --bogus
expect fr '^Usage : t3d COMMANDE \[ARGUMENTS...\]' "usage line" help
expect fr 'lister les séries DICOM d.un dossier' "command summary" help
expect fr 'option inconnue « --bogus »' "error" info --bogus
expect fr '^Liste les séries DICOM sous PATH' "command help" info --bogus
expect es '^Uso: t3d ORDEN \[ARGUMENTOS...\]' "usage line" help
expect es 'mostrar las series DICOM de una carpeta' "command summary" help
expect es 'opción desconocida «--bogus»' "error" info --bogus
expect es '^Muestra las series DICOM bajo PATH' "command help" info --bogus
# Finding and structure names shown in the user's language, the English names kept otherwise.
names() {
  l=$1 want=$2; shift 2
  got=$(T3D_LOCALEDIR="$tmp" LC_ALL=C.UTF-8 LANGUAGE="$l" "$T3D_BUILDDIR/tests/i18n-names" "$@" | tr '\n' '|')
  [ "$got" = "$want" ] || { echo "FAIL: ${l:-en} display names: got '$got', want '$want'"; fail=1; }
}
for l in de fr es ""; do
  case $l in
  de) want="Pleuraerguss|Lungenrundherd|Leber|unknown finding|" ;;
  fr) want="épanchement pleural|nodule pulmonaire|foie|unknown finding|" ;;
  es) want="derrame pleural|nódulo pulmonar|hígado|unknown finding|" ;;
  *) want="pleural effusion|pulmonary nodule|liver|unknown finding|" ;;
  esac
  names "$l" "$want" "finding:pleural effusion" "finding:pulmonary nodule" "structure:liver" "finding:unknown finding"
done
expect de '^t3d: model-info: nicht gefunden: ' "status text" model-info /nonexistent/model.safetensors
expect "" '^Usage: t3d COMMAND' "default" help
expect "" "unknown option '--bogus'" "default error" info --bogus
[ $fail = 0 ] && echo "i18n: German, French and Spanish catalogs used, English default kept"
exit $fail
