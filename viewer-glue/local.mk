# viewer-glue/: the plugin ABI header (installed for plugin authors), the plugin loader and
# t3d-viewer, the reference GTK 3 DICOM viewer.
t3dabidir = $(pkgincludedir)/viewer-glue
t3dabi_HEADERS = viewer-glue/t3d-plugin-abi.h
t3dplugindir = $(pkglibdir)/plugins

bin_PROGRAMS += t3d-viewer
t3d_viewer_SOURCES = viewer-glue/main.c viewer-glue/viewer.c viewer-glue/viewer.h viewer-glue/script.c \
	viewer-glue/plugins.c viewer-glue/plugins.h
t3d_viewer_CPPFLAGS = $(AM_CPPFLAGS) -DT3D_PLUGINDIR=\"$(t3dplugindir)\"
t3d_viewer_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS) $(EPOXY_CFLAGS)
t3d_viewer_LDADD = libt3d-ui.la libt3d.la $(GTK_LIBS) $(EPOXY_LIBS) $(LIBINTL) -lm
# Plugins resolve nothing from the viewer: the ABI passes every service as a function pointer.
EXTRA_DIST += docs/ARCHITECTURE.md docs/viewer.png
