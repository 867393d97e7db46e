# DICOM reading through the DCMTK shim: series discovery, loading policy (C), the DCMTK shim
# (the only C++ in libt3d), JPEG 2000 through OpenJPEG; `t3d info`; reader tests.
libt3d_la_SOURCES += core/dicom/dicom.c core/dicom/dicom.h core/dicom/dicom_internal.h core/dicom/dicom_shim.cc core/dicom/dicom_j2k.c \
	core/dicom/dicom_regular.c core/dicom/dicom_rle.c
libt3d_la_CFLAGS += $(OPENJPEG_CFLAGS)
# DCMTK 3.6.7 as Debian builds it requires C++17 in its headers (osconfig.h #errors otherwise);
# T3D_CXXFLAGS says c++14, so the later flag here wins.

libt3d_la_LIBADD += $(DCMTK_LIBS) $(OPENJPEG_LIBS)

t3d_SOURCES += cli/cmd_info.c cli/cmd_bench_dicom.c

# Test-only DICOM generator (C++, DCMTK + OpenJPEG encoders); never part of libt3d.
check_PROGRAMS += tests/test-dicom-read
tests_test_dicom_read_SOURCES = tests/test-dicom-read.c tests/dicom-testgen.cc tests/dicom-testgen.h tests/check.h
tests_test_dicom_read_CFLAGS = $(AM_CFLAGS)
tests_test_dicom_read_CXXFLAGS = $(AM_CXXFLAGS) $(DCMTK_CFLAGS) $(OPENJPEG_CFLAGS)
tests_test_dicom_read_LDADD = libt3d.la $(DCMTK_LIBS) $(OPENJPEG_LIBS) -lm
TESTS += tests/test-dicom-read

dist_check_SCRIPTS += tests/test-cli-info.sh
TESTS += tests/test-cli-info.sh

check_PROGRAMS += tests/dicom-testgen-cli
tests_dicom_testgen_cli_SOURCES = tests/dicom-testgen-cli.c tests/dicom-testgen.cc tests/dicom-testgen.h
tests_dicom_testgen_cli_CXXFLAGS = $(AM_CXXFLAGS) $(DCMTK_CFLAGS) $(OPENJPEG_CFLAGS)
tests_dicom_testgen_cli_LDADD = $(DCMTK_LIBS) $(OPENJPEG_LIBS)

# Writer (core/dicomwrite) -> reader round trip.
check_PROGRAMS += tests/test-dicom-roundtrip
tests_test_dicom_roundtrip_SOURCES = tests/test-dicom-roundtrip.c tests/check.h
tests_test_dicom_roundtrip_LDADD = libt3d.la -lm
TESTS += tests/test-dicom-roundtrip

# The fuzz entry point over seeds from t3d's DICOM writer, in every build.
check_PROGRAMS += tests/fuzz/fuzz-corpus-dicom
TESTS += tests/fuzz/fuzz-corpus-dicom
tests_fuzz_fuzz_corpus_dicom_SOURCES = tests/fuzz/run-corpus.c tests/fuzz/run-corpus.h \
	tests/fuzz/seeds-dicom.c tests/fuzz/fuzz-dicom.c tests/check.h
tests_fuzz_fuzz_corpus_dicom_LDADD = libt3d.la -lm

if FUZZERS
# See README.md "Fuzzing"; seeds: tests/fuzz/fuzz-corpus-dicom --write DIR.
noinst_PROGRAMS += tests/fuzz/fuzz-dicom
tests_fuzz_fuzz_dicom_SOURCES = tests/fuzz/fuzz-dicom.c
tests_fuzz_fuzz_dicom_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_dicom_LDADD = libt3d.la -lm
endif

# Gantry tilt and uneven steps against dcm2niix's corrected output (skips without dcm2niix).
dist_check_SCRIPTS += tests/test-dicom-geometry.sh
TESTS += tests/test-dicom-geometry.sh

# `t3d bench-dicom` at a tiny size (skips without dcm2niix).
dist_check_SCRIPTS += tests/test-bench-dicom.sh
TESTS += tests/test-bench-dicom.sh
