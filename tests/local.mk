# Tests: each program or script is one automake test; exit 77 means SKIP (e.g. no GPU).
AM_TESTS_ENVIRONMENT = \
	T3D_PYTHON='$(T3D_PYTHON)'; export T3D_PYTHON; \
	T3D_SRCDIR='$(abs_top_srcdir)'; export T3D_SRCDIR; \
	T3D_BUILDDIR='$(abs_top_builddir)'; export T3D_BUILDDIR; \
	ASAN_OPTIONS='detect_leaks=1:abort_on_error=0:protect_shadow_gap=0'; export ASAN_OPTIONS; \
	UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1'; export UBSAN_OPTIONS;

check_PROGRAMS += tests/test-runtime
tests_test_runtime_SOURCES = tests/test-runtime.c tests/check.h
tests_test_runtime_LDADD = libt3d.la -lm
TESTS += tests/test-runtime

dist_check_SCRIPTS += tests/test-devices.sh
TESTS += tests/test-devices.sh

# Installed headers are self-contained (C11 and C++), so t3d.pc consumers can include any one.
dist_check_SCRIPTS += tests/test-public-headers.sh
TESTS += tests/test-public-headers.sh
AM_TESTS_ENVIRONMENT += T3D_PUBLIC_HEADERS='$(nobase_pkginclude_HEADERS)'; export T3D_PUBLIC_HEADERS; \
	CC='$(CC)'; export CC; CXX='$(CXX)'; export CXX; JANSSON_CFLAGS='$(JANSSON_CFLAGS)'; export JANSSON_CFLAGS;

# gettext end to end: po/de.po -> catalog -> translated CLI output under LANGUAGE=de.
dist_check_SCRIPTS += tests/test-i18n.sh
TESTS += tests/test-i18n.sh
