# plugin/: t3d-plugin.so, the viewer plugin (libtool module installed into $(libdir)/t3d/plugins,
# exporting only its entry point), and its parts that need no display: the worker process
# (worker.c), the analysis job (analysis-job.c), preflight, preferences.
T3D_PLUGIN_CORE_SOURCES = \
	plugin/worker.c plugin/worker.h \
	plugin/analysis-job.c plugin/analysis-job.h \
	plugin/preflight.c plugin/preflight.h \
	plugin/prefs.c plugin/prefs.h
T3D_PLUGIN_CPPFLAGS = $(AM_CPPFLAGS) -DT3D_BINDIR=\"$(bindir)\"

t3dplugin_LTLIBRARIES = plugin/t3d-plugin.la
plugin_t3d_plugin_la_SOURCES = \
	plugin/plugin.c plugin/plugin-internal.h plugin/search.c plugin/export.c \
	$(T3D_PLUGIN_CORE_SOURCES) $(T3D_UI_PANEL_SOURCES) viewer-glue/t3d-plugin-abi.h
plugin_t3d_plugin_la_CPPFLAGS = $(T3D_PLUGIN_CPPFLAGS)
plugin_t3d_plugin_la_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS) $(JANSSON_CFLAGS)
plugin_t3d_plugin_la_LDFLAGS = -module -avoid-version -no-undefined -export-symbols-regex '^t3d_plugin_describe$$'
plugin_t3d_plugin_la_LIBADD = libt3d.la $(GTK_LIBS) $(JANSSON_LIBS) $(LIBINTL) -lm

# Worker protocol, cancel, crash reporting and preflight, without a display.
check_PROGRAMS += tests/test-plugin-worker tests/fake-worker
tests_test_plugin_worker_SOURCES = tests/test-plugin-worker.c tests/check.h $(T3D_PLUGIN_CORE_SOURCES)
tests_test_plugin_worker_CPPFLAGS = $(T3D_PLUGIN_CPPFLAGS)
tests_test_plugin_worker_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS) $(JANSSON_CFLAGS)
tests_test_plugin_worker_LDADD = libt3d.la $(GTK_LIBS) $(JANSSON_LIBS) $(LIBINTL) -lm
tests_fake_worker_SOURCES = tests/fake-worker.c
tests_fake_worker_LDADD = libt3d.la -lm
TESTS += tests/test-plugin-worker

# The plugin in a minimal host under Xvfb (exit 77 without it).
check_PROGRAMS += tests/plugin-host-check
tests_plugin_host_check_SOURCES = tests/plugin-host-check.c tests/check.h ui/panel-parts.c ui/panel-parts.h
tests_plugin_host_check_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS)
tests_plugin_host_check_LDADD = libt3d.la $(GTK_LIBS) -lm
dist_check_SCRIPTS += tests/test-plugin-host.sh
TESTS += tests/test-plugin-host.sh

# What the worker process costs next to in-process analysis (not a test; see docs).
noinst_PROGRAMS += tests/bench-plugin-worker
tests_bench_plugin_worker_SOURCES = tests/bench-plugin-worker.c $(T3D_PLUGIN_CORE_SOURCES)
tests_bench_plugin_worker_CPPFLAGS = $(T3D_PLUGIN_CPPFLAGS)
tests_bench_plugin_worker_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS) $(JANSSON_CFLAGS)
tests_bench_plugin_worker_LDADD = libt3d.la $(GTK_LIBS) $(JANSSON_LIBS) $(LIBINTL) -lm
check_PROGRAMS += tests/overlay-pixels-check
tests_overlay_pixels_check_SOURCES = tests/overlay-pixels-check.c
tests_overlay_pixels_check_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS)
tests_overlay_pixels_check_LDADD = $(GTK_LIBS) -lm

# t3d-viewer + t3d-plugin.so under Xvfb: overlay pixels at the known lesion, Cancel (exit 77
# without Xvfb or the viewer).
dist_check_SCRIPTS += tests/test-viewer-plugin.sh
TESTS += tests/test-viewer-plugin.sh

# `t3d thumbnail`: the similar-case list's pictures, made in a worker process.
t3d_SOURCES += cli/cmd_thumbnail.c
