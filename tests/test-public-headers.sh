#!/bin/sh
# Every installed header compiles on its own with only the include path a consumer gets from
# t3d.pc (-I<includedir>/t3d, here the source tree) plus its Requires (jansson), as C11 and C++.
set -u
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-headers.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
for h in $T3D_PUBLIC_HEADERS; do
  printf '#include "%s"\n#include "%s"\nint t3d_header_check_%s;\n' "$h" "$h" "$(echo "$h" | tr -c 'a-zA-Z0-9\n' _)" > "$tmp/c.c"
  if ! ${CC:-cc} -std=c11 -Wall -Werror -fsyntax-only -I"$T3D_SRCDIR" $JANSSON_CFLAGS "$tmp/c.c" 2> "$tmp/err"; then
    echo "FAIL (C): $h"; cat "$tmp/err"; fail=1
  fi
  cp "$tmp/c.c" "$tmp/c.cc"
  if ! ${CXX:-c++} -std=c++17 -Wall -Werror -fsyntax-only -I"$T3D_SRCDIR" $JANSSON_CFLAGS "$tmp/c.cc" 2> "$tmp/err"; then
    echo "FAIL (C++): $h"; cat "$tmp/err"; fail=1
  fi
done
n=$(echo $T3D_PUBLIC_HEADERS | wc -w)
[ "$n" -gt 0 ] || { echo "no headers given"; exit 99; }
echo "public headers: $n checked"
exit $fail
