# t3d-viewer GUI tests under Xvfb (Mesa llvmpipe) and their test plugins (libtool modules that
# export only the entry point). Screenshots stay in tests/artifacts/viewer/.
check_LTLIBRARIES += tests/plugin-probe.la tests/plugin-wrong-abi.la tests/plugin-too-new-api.la
TEST_PLUGIN_LDFLAGS = -module -avoid-version -rpath /nowhere -export-symbols-regex '^t3d_plugin_describe$$'
tests_plugin_probe_la_SOURCES = tests/plugin-probe.c
tests_plugin_probe_la_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS)
tests_plugin_probe_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugin_probe_la_LIBADD = $(GTK_LIBS)
tests_plugin_wrong_abi_la_SOURCES = tests/plugin-probe.c
tests_plugin_wrong_abi_la_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS) -DPROBE_WRONG_ABI
tests_plugin_wrong_abi_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugin_wrong_abi_la_LIBADD = $(GTK_LIBS)
tests_plugin_too_new_api_la_SOURCES = tests/plugin-probe.c
tests_plugin_too_new_api_la_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS) -DPROBE_TOO_NEW_API
tests_plugin_too_new_api_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugin_too_new_api_la_LIBADD = $(GTK_LIBS)

dist_check_SCRIPTS += tests/test-viewer-phantom-gl.sh tests/test-viewer-real-ct-orientation.sh \
	tests/test-viewer-plugins.sh
TESTS += tests/test-viewer-phantom-gl.sh tests/test-viewer-real-ct-orientation.sh tests/test-viewer-plugins.sh
EXTRA_DIST += tests/viewer-env.sh tests/viewer_check.py tests/viewer-refusal-de.po
clean-local: clean-viewer-artifacts
clean-viewer-artifacts:
	rm -rf tests/artifacts/viewer
.PHONY: clean-viewer-artifacts
