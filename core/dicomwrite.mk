# DICOM CT series writing and NIfTI export
libt3d_la_SOURCES += \
	core/dicomwrite.c core/dicomwrite.h \
	core/dicom_write_shim.cc core/dicom_write_shim.h \
	core/nifti.c core/nifti.h \
	core/phantom.c core/phantom.h
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

check_PROGRAMS += tests/test-dicom-write-api
tests_test_dicom_write_api_SOURCES = tests/test-dicom-write-api.c tests/check.h
tests_test_dicom_write_api_LDADD = libt3d.la -lm
TESTS += tests/test-dicom-write-api

dist_check_SCRIPTS += tests/test-dicom-write.sh
TESTS += tests/test-dicom-write.sh
