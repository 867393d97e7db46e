/* t3d-viewer internals shared by its files (viewer.c: window, loading, host services;
 * script.c: the test script; main.c: start-up). Not an API: nothing here is installed. */
#ifndef T3D_VIEWER_H
#define T3D_VIEWER_H

#include <stdint.h>

#include <gtk/gtk.h>

#include "core/base/volume.h"
#include "ui/slice-view.h"
#include "viewer-glue/plugins.h"
#include "viewer-glue/t3d-plugin-abi.h"

typedef struct viewer_series_entry viewer_series_entry;
typedef struct viewer_script viewer_script;

typedef struct {
  GtkApplication *app;
  GtkWidget *window, *header, *preset_combo, *menu, *plugin_menu_sep, *toolbar_box;
  GtkWidget *browser, *infobars, *side, *status, *readout, *progress;
  t3d_slice_view *views[3];
  t3d_plane active_plane;

  /* the open folder and its series (filled by the loading thread, then main-thread only) */
  char *source_path;
  GPtrArray *entries; /* viewer_series_entry * */
  unsigned generation; /* bumps with every open; messages from older loads are dropped */
  gboolean loading;

  /* the shown series */
  t3d_volume *volume;
  int shown_entry;
  t3d_host_series host_series;
  int64_t cross[3];
  double wl_center, wl_width;

  /* overlay */
  uint8_t *labels;
  t3d_host_rgba colours[256];
  size_t n_colours;
  gboolean label_visible[256];
  double opacity;

  t3d_plugins *plugins;
  char *locale_dir;
  viewer_script *script;
  char *screenshot_dir; /* T3D_VIEWER_SCREENSHOT */
  gboolean screenshots_taken;
  int exit_code;
} viewer;

viewer *viewer_new(GtkApplication *app, const char *locale_dir);
void viewer_free(viewer *v);
/* Opens a folder, DICOMDIR or file in the background; series_uid NULL = the first series. */
void viewer_open(viewer *v, const char *path, const char *series_uid);
void viewer_load_plugins(viewer *v);
void viewer_set_window(viewer *v, double center, double width);
/* Presets by key: "lung", "mediastinum", "bone", "brain", "abdomen"; FALSE if unknown. */
gboolean viewer_apply_preset(viewer *v, const char *key);
void viewer_set_crosshair(viewer *v, const int64_t voxel[3]);
const char *viewer_status_text(viewer *v);
/* The series browser: number of entries, and entry i's Series UID and whether it has its thumbnail. */
guint viewer_series_count(viewer *v);
const char *viewer_series_uid(viewer *v, guint i, gboolean *has_thumbnail);
/* Activates browser row i as a click would; FALSE when out of range. */
gboolean viewer_select_series(viewer *v, guint i);
gboolean viewer_overlay_shown(viewer *v);
/* Writes the whole window (GL views included) as a PNG; FALSE with *error on failure. */
gboolean viewer_screenshot_window(viewer *v, const char *path, GError **error);
void viewer_quit(viewer *v, int code);

/* Test scripts (script.c): one command a line, '#' comments; see docs/ARCHITECTURE.md. */
viewer_script *viewer_script_new(viewer *v, const char *text, const char *origin);
void viewer_script_free(viewer_script *s);
void viewer_script_start(viewer_script *s);

#endif
