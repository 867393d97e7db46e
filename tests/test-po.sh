#!/bin/sh
# The translations are complete: every file with marked strings is in po/POTFILES.in, and each
# catalog in po/LINGUAS, merged with the strings the sources hold now, compiles with
# `msgfmt -c` and has no untranslated or fuzzy message. Not a check of the wording itself.
set -u
src="${T3D_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}"
for tool in xgettext msgmerge msgfmt msgattrib; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool (gettext) not installed"; exit 77; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-po.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0

# 1. Every C file that marks strings (_(" N_(" C_(" NC_(" ngettext() is listed in POTFILES.in.
grep -v '^[[:space:]]*#' "$src/po/POTFILES.in" | sed '/^[[:space:]]*$/d' | sort -u >"$tmp/listed"
(cd "$src" && git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null ||
  find . -name '*.[ch]' ! -path './_build*' | sed 's|^\./||') |
  grep -v '^tests/' | sort -u >"$tmp/sources"
while IFS= read -r f; do
  [ -f "$src/$f" ] || continue
  if grep -qE '(^|[^A-Za-z0-9_])(N?C?_|ngettext)\("' "$src/$f" && ! grep -qxF "$f" "$tmp/listed"; then
    echo "FAIL: $f marks translatable strings but is not in po/POTFILES.in"
    fail=1
  fi
done <"$tmp/sources"
while IFS= read -r f; do
  [ -f "$src/$f" ] || { echo "FAIL: po/POTFILES.in lists $f, which does not exist"; fail=1; }
done <"$tmp/listed"

# 2. The template from the sources, with the options po/Makevars gives xgettext.
opts=$(sed -n '/^XGETTEXT_OPTIONS *=/,/[^\\]$/p' "$src/po/Makevars" | sed 's/^XGETTEXT_OPTIONS *=//; s/\\$//' | tr '\n' ' ')
# shellcheck disable=SC2086 # the options are words
(cd "$src" && xgettext $opts --add-comments=TRANSLATORS: --files-from="$tmp/listed" -o "$tmp/t3d.pot") ||
  { echo "FAIL: xgettext could not read the sources"; exit 1; }
[ -f "$tmp/t3d.pot" ] || { echo "FAIL: xgettext found no strings"; exit 1; }
total=$(grep -c '^msgid ' "$tmp/t3d.pot")
total=$((total - 1))

# 3. Each catalog: compiles with format checks, and nothing untranslated or fuzzy.
langs=$(grep -v '^[[:space:]]*#' "$src/po/LINGUAS" | tr -s ' \n' '  ')
[ -n "$langs" ] || { echo "FAIL: po/LINGUAS names no language"; exit 1; }
for l in $langs; do
  po="$src/po/$l.po"
  [ -f "$po" ] || { echo "FAIL: po/LINGUAS names $l but po/$l.po is missing"; fail=1; continue; }
  if ! msgfmt -c --statistics -o /dev/null "$po" 2>"$tmp/$l.stat"; then
    echo "FAIL: po/$l.po does not compile:"; cat "$tmp/$l.stat"; fail=1; continue
  fi
  msgmerge --quiet --lang="$l" "$po" "$tmp/t3d.pot" -o "$tmp/$l.po" || { echo "FAIL: msgmerge $l"; fail=1; continue; }
  if ! msgfmt -c --statistics -o /dev/null "$tmp/$l.po" 2>"$tmp/$l.stat"; then
    echo "FAIL: po/$l.po merged with the current strings does not compile:"; cat "$tmp/$l.stat"; fail=1; continue
  fi
  msgattrib --untranslated --no-obsolete --no-wrap "$tmp/$l.po" -o "$tmp/$l.untr"
  msgattrib --only-fuzzy --no-obsolete --no-wrap "$tmp/$l.po" -o "$tmp/$l.fuzzy"
  nu=0; nf=0
  [ -s "$tmp/$l.untr" ] && nu=$(($(grep -c '^msgid ' "$tmp/$l.untr") - 1))
  [ -s "$tmp/$l.fuzzy" ] && nf=$(($(grep -c '^msgid ' "$tmp/$l.fuzzy") - 1))
  if [ "$nu" -gt 0 ] || [ "$nf" -gt 0 ]; then
    echo "FAIL: po/$l.po: $nu untranslated and $nf fuzzy of $total messages ($(cat "$tmp/$l.stat"))"
    for kind in untr fuzzy; do
      [ -s "$tmp/$l.$kind" ] || continue
      echo "  $l $kind:"
      awk '/^#: /{ref=$2} /^msgctxt /{ctx=substr($0, 9) " "}
        want && /^"/{print "    " ref ": " ctx $0 " ..."; ctx=""} {want=0}
        /^msgid /{if ($0 == "msgid \"\"") want=1; else {print "    " ref ": " ctx substr($0, 7); ctx=""}}' "$tmp/$l.$kind"
    done
    echo "  (run 'make update-po', translate them in po/$l.po and remove the fuzzy marks)"
    fail=1
  else
    echo "po/$l.po: all $total messages translated ($(cat "$tmp/$l.stat"))"
  fi
done
exit $fail
