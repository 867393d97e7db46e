# libt3d: the core library (C11, no GTK). Modules add their sources in their own .mk files.
lib_LTLIBRARIES += libt3d.la
libt3d_la_SOURCES = \
	core/base/status.c core/base/status.h \
	core/base/log.c core/base/log.h \
	core/base/tensor.c core/base/tensor.h \
	core/base/arena.c core/base/arena.h \
	core/base/volume.c core/base/volume.h
libt3d_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(BLAS_CFLAGS)
libt3d_la_CXXFLAGS = $(AM_CXXFLAGS) $(DCMTK_CFLAGS)
libt3d_la_LIBADD = $(JANSSON_LIBS) $(BLAS_LIBS) $(OPENMP_CFLAGS) $(PTHREAD_LIBS) -lm
libt3d_la_LDFLAGS = -version-info 0:0:0 -no-undefined


# Public headers, installed under $(includedir)/t3d/ keeping their folders (they include each
# other as "core/<module>/x.h"), and a pkg-config file for programs that link libt3d (the viewer plugin).
nobase_pkginclude_HEADERS = \
	core/base/arena.h core/dicom/dicom.h core/dicom/dicomwrite.h core/base/log.h core/model/model.h core/model/modelconfig.h core/model/modeldefaults.h \
	core/model/modelfile.h core/dicom/nifti.h core/model/phantom.h core/model/preprocess.h core/base/status.h core/base/tensor.h \
	core/model/text.h core/model/tokenizer.h core/model/vision.h core/base/volume.h \
	kernels/backend.h kernels/cuda/device.h
pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = t3d.pc
