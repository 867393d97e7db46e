#!/bin/sh
# The CPU fallback of --device, on any machine: for each failure T3D_CUDA_FORCE_FAIL forces
# (nodriver, nodevice, nomem, launch at creation; kernel: a GPU whose convolution fails in the
# middle of the forward), `t3d analyze --device cuda` and `--device auto` succeed with exactly
# the CPU run's embedding, findings, volumes and mask, and print the one note the rule promises
# (cuda: always, naming the reason; auto: only when a GPU is present but unusable, i.e. nomem,
# launch and kernel); `--device cpu` never notes; a device string that does not parse fails;
# `t3d devices` agrees with a forced "no device"; $T3D_DEVICE=gpu (the viewer plugin's word) is
# honoured; report takes --device too.
set -u
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
T3D="$BUILD/t3d"
MODEL="$BUILD/models/t3d-tiny-init.safetensors"
if ! "$PY" -c 'import json, gzip' >/dev/null 2>&1; then
  echo "SKIP: no python3 to compare the JSON and NIfTI output"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-fallback.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
unset T3D_CUDA_FORCE_FAIL T3D_DEVICE LANGUAGE
LC_ALL=C; export LC_ALL  # the notes are matched in English
"$T3D" phantom-write "$tmp/series" --size 40,40,16 >/dev/null || fail "phantom-write"
built=$("$T3D" devices --json | "$PY" -c 'import json,sys; print(1 if json.load(sys.stdin)["cuda_built"] else 0)') \
  || fail "t3d devices --json"
echo "CUDA in this build: $built"

analyze() { # DEVICE NAME: runs analyze, output in $tmp/NAME.{json,err,nii.gz}
  "$T3D" analyze "$tmp/series" --model "$MODEL" --json --mask "$tmp/$2.nii.gz" --threads 2 --device "$1" \
    >"$tmp/$2.json" 2>"$tmp/$2.err" || { cat "$tmp/$2.err"; fail "analyze --device $1 ($2) exited non-zero"; }
}
same_as_cpu() { # NAME
  "$PY" - "$tmp/cpu.json" "$tmp/$1.json" "$tmp/cpu.nii.gz" "$tmp/$1.nii.gz" <<'PYEOF' || fail "$1 differs from the CPU run"
import gzip, json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for key in ("embedding", "findings", "volumes_ml"):
    if a[key] != b[key]:
        sys.exit("%s differs: cpu %r, fallback %r" % (key, a[key][:4], b[key][:4]))
ma, mb = gzip.open(sys.argv[3]).read(), gzip.open(sys.argv[4]).read()
if ma != mb:
    sys.exit("masks differ (%d and %d bytes)" % (len(ma), len(mb)))
PYEOF
}
notes() { grep -c "t3d: note:" "$tmp/$1.err"; }

analyze cpu cpu
[ "$(notes cpu)" = 0 ] || fail "--device cpu printed a note: $(cat "$tmp/cpu.err")"

for mode in nodriver nodevice nomem launch kernel; do
  for dev in cuda auto; do
    name="$mode-$dev"
    T3D_CUDA_FORCE_FAIL=$mode analyze "$dev" "$name"
    T3D_CUDA_FORCE_FAIL=$mode same_as_cpu "$name"
    n=$(notes "$name")
    if [ "$mode" = kernel ] && [ "$built" = 1 ]; then # a GPU that fails mid-forward: redone on the CPU
      want=1
      reason="the GPU failed (CUDA conv3d: unspecified launch failure (forced by T3D_CUDA_FORCE_FAIL=kernel))"
    elif [ "$built" = 1 ]; then
      case "$dev-$mode" in
      auto-nodriver | auto-nodevice) want=0 ;;
      *) want=1 ;;
      esac
      reason="T3D_CUDA_FORCE_FAIL=$mode"
    else
      want=0
      [ "$dev" = cuda ] && want=1
      reason="built without CUDA"
    fi
    [ "$n" = "$want" ] || fail "$name: $n note lines, want $want: $(cat "$tmp/$name.err")"
    if [ "$want" = 1 ]; then
      grep "t3d: note:" "$tmp/$name.err" | grep -q "$reason" || fail "$name: the note does not name '$reason': $(cat "$tmp/$name.err")"
      grep "t3d: note:" "$tmp/$name.err" | grep -q "running on the CPU" || fail "$name: the note does not say the CPU runs instead"
    fi
    echo "ok: $name ($n note) $(cat "$tmp/$name.err")"
  done
done

if "$T3D" analyze "$tmp/series" --model "$MODEL" --device gpu7 >/dev/null 2>"$tmp/bad.err"; then
  fail "--device gpu7 was accepted"
fi
grep -q "unknown device 'gpu7'" "$tmp/bad.err" || fail "--device gpu7: no clear message: $(cat "$tmp/bad.err")"

# $T3D_DEVICE as the viewer plugin sets it for its worker ("gpu" is "cuda")
T3D_DEVICE=gpu T3D_CUDA_FORCE_FAIL=nomem "$T3D" analyze "$tmp/series" --model "$MODEL" --threads 2 --no-segment \
  >/dev/null 2>"$tmp/env.err" || { cat "$tmp/env.err"; fail "T3D_DEVICE=gpu analyze exited non-zero"; }
[ "$(notes env)" = 1 ] || fail "T3D_DEVICE=gpu (an explicit GPU that cannot be used): want one note: $(cat "$tmp/env.err")"
echo "ok: T3D_DEVICE=gpu $(cat "$tmp/env.err")"

T3D_CUDA_FORCE_FAIL=nodevice "$T3D" devices --json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
assert d["gpus"] == [] and d["backend"] == "cpu", d' || fail "t3d devices with a forced nodevice"

T3D_CUDA_FORCE_FAIL=kernel "$T3D" report "$tmp/series" --model "$MODEL" --no-index --device cuda --threads 2 \
  >"$tmp/report-k.txt" 2>"$tmp/report-k.err" || { cat "$tmp/report-k.err"; fail "report with a failing GPU kernel"; }
[ "$(notes report-k)" = 1 ] || fail "report (kernel): want one note: $(cat "$tmp/report-k.err")"
echo "ok: report --device cuda (kernel) redone on the CPU: $(cat "$tmp/report-k.err")"

T3D_CUDA_FORCE_FAIL=nomem "$T3D" report "$tmp/series" --model "$MODEL" --no-index --device cuda --threads 2 \
  >"$tmp/report.txt" 2>"$tmp/report.err" || { cat "$tmp/report.err"; fail "report --device cuda with nomem"; }
[ "$(notes report)" = 1 ] || fail "report: want one note: $(cat "$tmp/report.err")"
echo "ok: report --device cuda (nomem) fell back: $(cat "$tmp/report.err")"
exit 0
