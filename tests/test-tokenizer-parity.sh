#!/bin/sh
# Tokenizer parity: transformers' BertTokenizer ids (tests/reference/tokenizer_reference.py, run
# with $T3D_PYTHON) must equal the C tokenizer's (tests/test-tokenizer) for >= 500 sentences and
# a cased and an uncased vocabulary. Skips (77) only when transformers cannot be imported.
set -u
: "${T3D_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${T3D_BUILDDIR:=$T3D_SRCDIR}"
: "${T3D_PYTHON:=python3}"

if ! "$T3D_PYTHON" -c "import transformers" >/dev/null 2>&1; then
  echo "SKIP: $T3D_PYTHON cannot import transformers (run tools/install-deps.sh)"
  exit 77
fi
# Vocabularies and reference ids go to a temporary folder, removed on success, kept on failure.
dir=$(mktemp -d "${TMPDIR:-/tmp}/t3d-tokenizer-ref.XXXXXX") || exit 1
"$T3D_PYTHON" "$T3D_SRCDIR/tests/reference/tokenizer_reference.py" "$dir"
rc=$?
if [ $rc -ne 0 ]; then
  echo "FAIL: tokenizer_reference.py exited with $rc (output kept in $dir)"
  exit 1
fi
"$T3D_BUILDDIR/tests/test-tokenizer" "$dir"
rc=$?
if [ $rc -eq 0 ]; then
  rm -rf "$dir"
else
  echo "FAIL: test-tokenizer exited with $rc (reference kept in $dir)"
fi
exit $rc
