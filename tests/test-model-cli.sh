#!/bin/sh
# `t3d model-init` and `t3d model-info`: seeded output is reproducible, the built-in and JSON
# configs produce complete models, info reports them, and bad input fails with a message.
set -u
t3d="${T3D_BUILDDIR:-.}/t3d"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-model-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_rc() { # WANT CMD... : runs CMD, output to $tmp/out, checks the exit status
  want=$1; shift
  "$@" >"$tmp/out" 2>&1; got=$?
  [ "$got" = "$want" ] || { fail "$* exited $got, want $want"; cat "$tmp/out" >&2; }
}
expect_out() { grep -q -- "$1" "$tmp/out" || { fail "expected '$1' in output of the last command:"; cat "$tmp/out" >&2; }; }

expect_rc 0 "$t3d" model-init --config t3d-tiny --seed 3 -o "$tmp/a.safetensors"
expect_out "wrote $tmp/a.safetensors: t3d-tiny, "
expect_rc 0 "$t3d" model-init --config t3d-tiny --seed 3 -o "$tmp/b.safetensors"
cmp -s "$tmp/a.safetensors" "$tmp/b.safetensors" || fail "same seed gave different files"
expect_rc 0 "$t3d" model-init --config t3d-tiny --seed 4 -o "$tmp/c.safetensors"
cmp -s "$tmp/a.safetensors" "$tmp/c.safetensors" && fail "different seeds gave the same file"

expect_rc 0 "$t3d" model-info "$tmp/a.safetensors"
expect_out "format version:  1"
expect_out "model:           t3d-tiny"
expect_out "model check:     complete"
expect_out "vision.layer4.0.conv2.weight  *F32   \[64,64,3,3,3\]  *442368"
expect_out "background, body, lung, heart, liver, spleen, kidney, bone, lesion"
expect_out "11 findings"
expect_rc 0 "$t3d" model-info --json --check "$tmp/a.safetensors"
expect_out '"complete": true'
expect_out '"format_version": 1'
expect_out '"name": "logit_scale"'
ntensors=$("$t3d" model-init --config t3d-tiny --list | wc -l)
grep -c '"dtype": "F32"' "$tmp/out" | grep -qx "$ntensors" || fail "--json lists a different number of tensors than --list ($ntensors)"

# the model the build made
if [ -f "${T3D_BUILDDIR:-.}/models/t3d-tiny-init.safetensors" ]; then
  expect_rc 0 "$t3d" model-info --check "${T3D_BUILDDIR:-.}/models/t3d-tiny-init.safetensors"
else
  fail "the build did not make models/t3d-tiny-init.safetensors"
fi

# a config from a JSON file: the tiny one, smaller, with no segmentation head
cat > "$tmp/small.json" <<'JSON'
{"model": {"name": "small", "vision": {"arch": "resnet", "block": "basic", "layers": [1, 1, 1, 1],
  "widths": [4, 8, 8, 16], "in_channels": 1, "conv1_kernel": 3, "conv1_stride": 2},
 "text": {"arch": "bert", "vocab_size": 600, "hidden": 16, "layers": 1, "heads": 2, "intermediate": 32,
  "max_positions": 32, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "lowercase": true, "strip_accents": true},
 "projection": {"dim": 8, "hidden": 16},
 "preprocess": {"spacing_mm": [2, 2, 2], "shape": [32, 64, 64], "hu_min": -1000, "hu_max": 400, "pad_value": -1000}}}
JSON
expect_rc 0 "$t3d" model-init --config "$tmp/small.json" -o "$tmp/small.safetensors"
expect_rc 0 "$t3d" model-info --check "$tmp/small.safetensors"
expect_out "model:           small"
expect_out "vocab 600 tokens"
expect_out "0 classes"

# failures: message and exit status
expect_rc 1 "$t3d" model-init --config t3d-huge -o "$tmp/x.safetensors"
expect_out 'no built-in model config "t3d-huge"'
sed 's/"layers": \[1, 1, 1, 1\]/"layers": [1, 1, 0, 1]/' "$tmp/small.json" > "$tmp/bad.json"
expect_rc 1 "$t3d" model-init --config "$tmp/bad.json" -o "$tmp/x.safetensors"
expect_out "bad.json: model.vision.layers\[2\]: must be an integer 1..64, got 0"
sed 's/"vocab_size": 600/"vocab_size": 100/' "$tmp/small.json" > "$tmp/bad.json"
expect_rc 1 "$t3d" model-init --config "$tmp/bad.json" -o "$tmp/x.safetensors"
expect_out "vocab_size 100 is smaller than the built-in vocabulary"
[ -e "$tmp/x.safetensors" ] && fail "a failed model-init left $tmp/x.safetensors"
expect_rc 1 "$t3d" model-init --config t3d-tiny -o "$tmp/no/such/dir/x.safetensors"
expect_out "cannot create a temporary file in $tmp/no/such/dir"
expect_rc 2 "$t3d" model-init --config t3d-tiny
expect_rc 2 "$t3d" model-init --config t3d-tiny --seed x -o "$tmp/x.safetensors"
expect_rc 0 "$t3d" model-init --help
expect_out "Usage: t3d model-init"

printf 'garbage, not a model' > "$tmp/garbage.safetensors"
expect_rc 1 "$t3d" model-info "$tmp/garbage.safetensors"
expect_out "garbage.safetensors: header length"
expect_rc 1 "$t3d" model-info "$tmp/absent.safetensors"
expect_out "cannot open"
head -c 1000000 "$tmp/a.safetensors" > "$tmp/cut.safetensors"
expect_rc 1 "$t3d" model-info "$tmp/cut.safetensors"
expect_out "run past the data section"
expect_rc 2 "$t3d" model-info
expect_rc 0 "$t3d" model-info --help

[ "$fails" = 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "test-model-cli: all checks passed"
