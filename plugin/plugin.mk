# plugin/: t3d-plugin.so, the viewer plugin (libtool module), and its parts that need no
# display: the worker process (worker.c), the analysis job (analysis-job.c), preflight.
T3D_PLUGIN_CORE_SOURCES = \
	plugin/worker.c plugin/worker.h \
	plugin/analysis-job.c plugin/analysis-job.h \
	plugin/preflight.c plugin/preflight.h
T3D_PLUGIN_CPPFLAGS = $(AM_CPPFLAGS) -DT3D_BINDIR=\"$(bindir)\"

# Worker protocol, cancel, crash reporting and preflight, without a display.
check_PROGRAMS += tests/test-plugin-worker tests/fake-worker
tests_test_plugin_worker_SOURCES = tests/test-plugin-worker.c tests/check.h $(T3D_PLUGIN_CORE_SOURCES)
tests_test_plugin_worker_CPPFLAGS = $(T3D_PLUGIN_CPPFLAGS)
tests_test_plugin_worker_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS) $(JANSSON_CFLAGS)
tests_test_plugin_worker_LDADD = libt3d.la $(GTK_LIBS) $(JANSSON_LIBS) $(LIBINTL) -lm
tests_fake_worker_SOURCES = tests/fake-worker.c
tests_fake_worker_LDADD = libt3d.la -lm
TESTS += tests/test-plugin-worker
