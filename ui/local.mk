# ui/: GTK 3 widgets that know nothing of the plugin ABI (the GL slice view). A convenience
# library so t3d-viewer and the plugin link the same widgets.
noinst_LTLIBRARIES += libt3d-ui.la
libt3d_ui_la_SOURCES = ui/slice-view.c ui/slice-view.h
libt3d_ui_la_CFLAGS = $(AM_CFLAGS) $(GTK_CFLAGS) $(EPOXY_CFLAGS)
libt3d_ui_la_LIBADD = $(GTK_LIBS) $(EPOXY_LIBS) -lm
