# DICOM CT series writing and NIfTI export
libt3d_la_SOURCES += \
	core/dicom/dicomwrite.c core/dicom/dicomwrite.h \
	core/dicom/dicom_write_shim.cc core/dicom/dicom_write_shim.h \
	core/dicom/nifti.c core/dicom/nifti.h
libt3d_la_CFLAGS += $(ZLIB_CFLAGS) $(OPENJPEG_CFLAGS)
# Debian's DCMTK 3.6.7 headers refuse anything older than C++17 (osconfig.h #error).

libt3d_la_LIBADD += $(DCMTK_LIBS) $(OPENJPEG_LIBS) $(ZLIB_LIBS)

t3d_SOURCES += cli/cmd_phantom_write.c cli/cmd_volume.c

check_PROGRAMS += tests/test-nifti tests/nifti-compare
tests_test_nifti_SOURCES = tests/test-nifti.c tests/check.h
tests_test_nifti_LDADD = libt3d.la -lm
tests_nifti_compare_SOURCES = tests/nifti-compare.c
tests_nifti_compare_LDADD = libt3d.la -lm
TESTS += tests/test-nifti

# The NIfTI fuzz entry point over seeds from t3d_nifti_write and header variants, in every build.
check_PROGRAMS += tests/fuzz/fuzz-corpus-nifti
TESTS += tests/fuzz/fuzz-corpus-nifti
tests_fuzz_fuzz_corpus_nifti_SOURCES = tests/fuzz/run-corpus.c tests/fuzz/run-corpus.h \
	tests/fuzz/seeds-nifti.c tests/fuzz/fuzz-nifti.c tests/check.h
tests_fuzz_fuzz_corpus_nifti_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS)
tests_fuzz_fuzz_corpus_nifti_LDADD = libt3d.la $(ZLIB_LIBS) -lm

if FUZZERS
# See README.md "Fuzzing"; seeds: tests/fuzz/fuzz-corpus-nifti --write DIR.
noinst_PROGRAMS += tests/fuzz/fuzz-nifti
tests_fuzz_fuzz_nifti_SOURCES = tests/fuzz/fuzz-nifti.c
tests_fuzz_fuzz_nifti_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_nifti_LDADD = libt3d.la -lm
endif

check_PROGRAMS += tests/test-dicom-write-api
tests_test_dicom_write_api_SOURCES = tests/test-dicom-write-api.c tests/check.h
tests_test_dicom_write_api_LDADD = libt3d.la -lm
TESTS += tests/test-dicom-write-api

dist_check_SCRIPTS += tests/test-dicom-write.sh
TESTS += tests/test-dicom-write.sh
