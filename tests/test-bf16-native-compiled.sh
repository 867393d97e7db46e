#!/bin/sh
# The native bf16 kernels are in the library even where they cannot run (kernels/cpu/bf16.h):
# the AVX512-BF16 kernel's vdpbf16ps and the AMX kernel's ldtilecfg, tileloadd, tdpbf16ps,
# tilestored and tilerelease, disassembled from libt3d. SKIP without objdump or on non-x86-64.
set -u
command -v objdump >/dev/null 2>&1 || { echo "objdump not found: skip"; exit 77; }
case "$(uname -m)" in x86_64) ;; *) echo "not x86-64: skip"; exit 77 ;; esac
b="${T3D_BUILDDIR:-.}"
lib=""
for f in "$b/.libs/libt3d.so" "$b/.libs/libt3d.a"; do
  [ -f "$f" ] && { lib="$f"; break; }
done
[ -n "$lib" ] || { echo "FAIL: no libt3d.so or libt3d.a under $b/.libs"; exit 1; }
dis="$(objdump -d --no-show-raw-insn "$lib")" || { echo "FAIL: objdump -d $lib"; exit 1; }
rc=0
for insn in vdpbf16ps ldtilecfg tileloadd tdpbf16ps tilestored tilerelease; do
  n="$(printf '%s\n' "$dis" | grep -c "[[:space:]]$insn[[:space:]]*" || true)"
  if [ "$n" -gt 0 ]; then
    echo "ok: $insn x$n in $lib"
  else
    echo "FAIL: $insn not found in $lib"
    rc=1
  fi
done
exit $rc
