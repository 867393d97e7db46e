# Preprocessing with geometry: resample, HU window, crop/pad, inverse label mapping
libt3d_la_SOURCES += core/model/preprocess.c core/model/preprocess.h

check_PROGRAMS += tests/test-preprocess
tests_test_preprocess_SOURCES = tests/test-preprocess.c tests/check.h
tests_test_preprocess_LDADD = libt3d.la -lm
TESTS += tests/test-preprocess

# Parity of the resample step with PyTorch F.interpolate (skips without torch). The tool writes
# a synthetic volume and its resampling; the reference script compares.
check_PROGRAMS += tests/preprocess-parity-tool
tests_preprocess_parity_tool_SOURCES = tests/preprocess-parity-tool.c
tests_preprocess_parity_tool_LDADD = libt3d.la -lm
dist_check_SCRIPTS += tests/test-preprocess-parity.sh
TESTS += tests/test-preprocess-parity.sh
EXTRA_DIST += tests/reference/preprocess_reference.py

# Timing on a CT-sized volume (not run by make check): tests/bench-preprocess [threads]
check_PROGRAMS += tests/bench-preprocess
tests_bench_preprocess_SOURCES = tests/bench-preprocess.c
tests_bench_preprocess_LDADD = libt3d.la -lm
