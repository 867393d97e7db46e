# Draft reports (core/report): text/Markdown, DICOM SR (TID 1500) and SEG export through a DCMTK
# shim; SHA-256 of the model file; `t3d report`; report tests.
libt3d_la_SOURCES += core/report/report.c core/report/report.h core/report/report_internal.h \
	core/report/report_shim.cc core/base/sha256.c core/base/sha256.h
nobase_pkginclude_HEADERS += core/report/report.h core/base/sha256.h

t3d_SOURCES += cli/cmd_report.c

# Unit: text content and determinism, lesion count/diameter of a known sphere, SHA-256 vectors,
# neighbour phrasing rule (no model run).
check_PROGRAMS += tests/test-report-text
tests_test_report_text_SOURCES = tests/test-report-text.c tests/report-fake.h tests/check.h
tests_test_report_text_LDADD = libt3d.la -lm
TESTS += tests/test-report-text

# DCMTK read-back of exported SEG/SR (test helper, C++; never part of libt3d).
check_PROGRAMS += tests/report-readback
tests_report_readback_SOURCES = tests/report-readback.cc
tests_report_readback_CXXFLAGS = $(AM_CXXFLAGS) $(DCMTK_CFLAGS)
tests_report_readback_LDADD = $(DCMTK_LIBS)

# End to end: phantom -> t3d report (bundled model) -> text/md/SR/SEG; dciodvfy, DCMTK and
# highdicom read-back (odd sizes and non-axial orientations included).
dist_check_SCRIPTS += tests/test-report-cli.sh tests/report-check-dicom.py
TESTS += tests/test-report-cli.sh

# The constructed case (tests/report-fake.h) exported through the API, for test-report-cli.sh.
check_PROGRAMS += tests/report-fake-export
tests_report_fake_export_SOURCES = tests/report-fake-export.c tests/report-fake.h
tests_report_fake_export_LDADD = libt3d.la -lm

# The report fuzz entry point (neighbour text through the phrasing rule) over its seeds, in every build.
check_PROGRAMS += tests/fuzz/fuzz-corpus-report
TESTS += tests/fuzz/fuzz-corpus-report
tests_fuzz_fuzz_corpus_report_SOURCES = tests/fuzz/run-corpus.c tests/fuzz/run-corpus.h \
	tests/fuzz/seeds-report.c tests/fuzz/fuzz-report.c tests/check.h
tests_fuzz_fuzz_corpus_report_LDADD = libt3d.la -lm

if FUZZERS
# See README.md "Fuzzing"; seeds: tests/fuzz/fuzz-corpus-report --write DIR.
noinst_PROGRAMS += tests/fuzz/fuzz-report
tests_fuzz_fuzz_report_SOURCES = tests/fuzz/fuzz-report.c
tests_fuzz_fuzz_report_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_report_LDADD = libt3d.la -lm
endif
