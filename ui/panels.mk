# ui/ panels of the T3D plugin: GTK 3 widgets that know neither the plugin ABI nor the engine.
# Compiled into plugin/t3d-plugin.la (plugin/plugin.mk) and into the widget test.
T3D_UI_PANEL_SOURCES = \
	ui/panel-parts.c ui/panel-parts.h \
	ui/analysis-panel.c ui/analysis-panel.h \
	ui/overlay-controls.c ui/overlay-controls.h \
	ui/search-panel.c ui/search-panel.h \
	ui/export-dialog.c ui/export-dialog.h \
	ui/prefs-dialog.c ui/prefs-dialog.h
