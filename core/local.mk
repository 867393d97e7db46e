# libt3d: the core library (C11, no GTK). Modules add their sources in their own .mk files.
lib_LTLIBRARIES += libt3d.la
libt3d_la_SOURCES = \
	core/status.c core/status.h \
	core/log.c core/log.h \
	core/tensor.c core/tensor.h \
	core/arena.c core/arena.h \
	core/volume.c core/volume.h
libt3d_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(BLAS_CFLAGS)
libt3d_la_CXXFLAGS = $(AM_CXXFLAGS) $(DCMTK_CFLAGS)
libt3d_la_LIBADD = $(JANSSON_LIBS) $(BLAS_LIBS) $(OPENMP_CFLAGS) $(PTHREAD_LIBS) -lm
libt3d_la_LDFLAGS = -version-info 0:0:0 -no-undefined


# Public headers, installed under $(includedir)/t3d/ keeping their folders (they include each
# other as "core/x.h"), and a pkg-config file for programs that link libt3d (the viewer plugin).
nobase_pkginclude_HEADERS = \
	core/arena.h core/dicom.h core/dicomwrite.h core/log.h core/model.h core/modelconfig.h core/modeldefaults.h \
	core/modelfile.h core/nifti.h core/phantom.h core/preprocess.h core/status.h core/tensor.h \
	core/text.h core/tokenizer.h core/vision.h core/volume.h \
	kernels/backend.h kernels/cuda/device.h
pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = t3d.pc
