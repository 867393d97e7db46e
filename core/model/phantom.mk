# Synthetic CT phantoms (core/model/phantom*): the tiny test phantom (`t3d phantom-write`) and
# chest-abdomen cases with findings, labels and reports (`t3d phantom`); test data and training
# data, never patient data.
libt3d_la_SOURCES += core/model/phantom.c core/model/phantom.h core/model/phantom_internal.h \
	core/model/phantom_case.c core/model/phantom_case_internal.h core/model/phantom_sample.c \
	core/model/phantom_report.c
t3d_SOURCES += cli/cmd_phantom.c

# Development tool: real CT next to a phantom (docs/phantom-vs-real.png).
noinst_PROGRAMS += tests/phantom-preview
tests_phantom_preview_SOURCES = tests/phantom-preview.c
tests_phantom_preview_LDADD = libt3d.la -lz -lm

check_PROGRAMS += tests/test-phantom-case
tests_test_phantom_case_SOURCES = tests/test-phantom-case.c tests/check.h
tests_test_phantom_case_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_phantom_case_LDADD = libt3d.la $(JANSSON_LIBS) -lm
TESTS += tests/test-phantom-case

dist_check_SCRIPTS += tests/test-phantom-cli.sh
TESTS += tests/test-phantom-cli.sh
