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

