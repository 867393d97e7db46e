# Evaluation (core/model/eval, `t3d eval`): manifest and labels.json readers, AUROC, recall@k, Dice.
libt3d_la_SOURCES += core/model/eval.c core/model/eval.h
t3d_SOURCES += cli/cmd_eval.c cli/progress.c cli/progress.h

check_PROGRAMS += tests/test-eval
tests_test_eval_SOURCES = tests/test-eval.c tests/check.h
tests_test_eval_LDADD = libt3d.la -lm
TESTS += tests/test-eval

# `t3d eval` end to end on tiny phantoms with the bundled model (JSON fields and ranges, bad inputs).
dist_check_SCRIPTS += tests/test-eval-cli.sh
TESTS += tests/test-eval-cli.sh

# The manifest parser's fuzz entry point over seeds, in every build; the libFuzzer binary with
# --enable-fuzzers (see README.md "Fuzzing"; seeds: tests/fuzz/fuzz-corpus-manifest --write DIR).
check_PROGRAMS += tests/fuzz/fuzz-corpus-manifest
TESTS += tests/fuzz/fuzz-corpus-manifest
tests_fuzz_fuzz_corpus_manifest_SOURCES = tests/fuzz/run-corpus.c tests/fuzz/run-corpus.h \
	tests/fuzz/seeds-manifest.c tests/fuzz/fuzz-manifest.c tests/check.h
tests_fuzz_fuzz_corpus_manifest_LDADD = libt3d.la -lm
if FUZZERS
noinst_PROGRAMS += tests/fuzz/fuzz-manifest
tests_fuzz_fuzz_manifest_SOURCES = tests/fuzz/fuzz-manifest.c
tests_fuzz_fuzz_manifest_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_manifest_LDADD = libt3d.la -lm
endif
