/* t3d-plugin-abi.h: the one contract between a viewer (the host, e.g. t3d-viewer) and a
 * plugin loaded into it (e.g. t3d-plugin.so). Plain C over GTK 3 types; it deliberately knows
 * nothing of libt3d, so a host need not link libt3d and a plugin need not know the host's code.
 *
 * Versions (the Geany model)
 *   T3D_PLUGIN_ABI_VERSION  must be equal in host and plugin. It changes only when something
 *                           already published changes meaning or layout (a field removed or
 *                           moved, a signature changed). Every host and plugin is rebuilt.
 *   T3D_PLUGIN_API_VERSION  grows by one with every addition (a field appended to a struct, a
 *                           new event, a new enum value). A plugin states in its descriptor the
 *                           lowest API it needs (api_min); a host with a lower API refuses it.
 *   The loader refuses, with a translated message that names the plugin file and both
 *   versions, a plugin whose abi_version differs from the host's or whose api_min is above it.
 *
 * Ownership and layout rules
 *   - The host owns every struct in this header (t3d_host, t3d_host_funcs, t3d_host_series) and
 *     only ever appends fields at their ends; a plugin never allocates, copies by value or
 *     sizes one of them. Fields a plugin's api_min does not know about it simply does not use.
 *   - The plugin owns its descriptor (static storage, valid while the module is loaded).
 *   - Strings passed to the host are copied by the host; strings and arrays the host returns
 *     are borrowed and valid as long as stated at the function.
 *
 * Threads: every host function runs on the GTK main thread only, except
 *   funcs->call_on_main_loop, which any thread may call (the way back from a worker thread).
 *
 * Life cycle of one plugin
 *   1. The host opens the module (GModule, G_MODULE_BIND_LOCAL: the plugin's symbols never
 *      resolve another plugin's), looks up T3D_PLUGIN_ENTRY_SYMBOL and calls it.
 *   2. It checks descriptor->abi_version and descriptor->api_min (both are the first fields, so
 *      that check is safe whatever else changed), refusing mismatches.
 *   3. It calls init(host, &message). The plugin adds its buttons, menu items and panels and
 *      connects to events there. On failure it returns T3D_PLUGIN_ERROR and may set *message
 *      (g_malloc'ed, translated, the host frees it and shows it); it must have undone anything
 *      it did before returning.
 *   4. At unload (viewer quit) the host calls cleanup(host). cleanup undoes exactly what init
 *      did: removes the items it added (funcs->remove_item), disconnects its listeners, cancels
 *      its main-loop calls and any worker. As a safety net the host then removes whatever items,
 *      listeners and pending main-loop calls the plugin left behind, and closes the module.
 *
 * Translations: a plugin never calls textdomain() (the domain belongs to the host). It uses
 * <glib/gi18n-lib.h> with its own GETTEXT_PACKAGE and calls bindtextdomain() for that domain
 * once in init (host->locale_dir tells where the host found its catalogs).
 *
 * Geometry convention (the same as DICOM and t3d_volume): voxel (i, j, k) -- i along columns,
 * j along rows, k along slices -- lies at
 *   P = origin + i*spacing[0]*direction[:,0] + j*spacing[1]*direction[:,1] + k*spacing[2]*direction[:,2]
 * in patient coordinates LPS (millimetres); direction[r][c] is row r (L, P, S) of axis c.
 * Voxel arrays are z-major: v[(k*dims[1] + j)*dims[0] + i]. Row j = 0 is the top row of the
 * DICOM image. */
#ifndef T3D_PLUGIN_ABI_H
#define T3D_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#include <gmodule.h>
#include <gtk/gtk.h>

#ifdef __cplusplus
extern "C" {
#endif

/* History of T3D_PLUGIN_API_VERSION (append a line with every addition):
 *   1  first version: series, position, items, overlay, status/progress, events, main loop. */
#define T3D_PLUGIN_API_VERSION 1
#define T3D_PLUGIN_ABI_VERSION 1

/* The one symbol a plugin exports (see T3D_PLUGIN_DEFINE below). */
#define T3D_PLUGIN_ENTRY_SYMBOL "t3d_plugin_describe"

typedef enum {
  T3D_PLUGIN_OK = 0,
  T3D_PLUGIN_ERROR = 1,     /* generic failure; a message says what */
  T3D_PLUGIN_NO_SERIES = 2, /* the call needs an open series and none is open */
  T3D_PLUGIN_BAD_ARG = 3    /* sizes or values the host cannot use (message on stderr) */
} t3d_plugin_status;

/* The three orthogonal views. Axial: perpendicular to S; coronal: to P; sagittal: to L. */
typedef enum {
  T3D_PLANE_AXIAL = 0,
  T3D_PLANE_CORONAL = 1,
  T3D_PLANE_SAGITTAL = 2
} t3d_plane;

/* Events a plugin may listen to (funcs->add_listener). */
typedef enum {
  T3D_HOST_EVENT_SERIES_OPENED = 1,   /* a series was loaded; funcs->series() is the new one */
  T3D_HOST_EVENT_SERIES_CLOSED = 2,   /* the open series is about to go away (before the next
                                         opens, and at quit); drop borrowed pointers now */
  T3D_HOST_EVENT_POSITION_CHANGED = 3 /* slice, plane or cursor moved (funcs->position()) */
} t3d_host_event;

typedef struct t3d_host t3d_host;

/* The open series. Borrowed from the host; valid from SERIES_OPENED until SERIES_CLOSED. */
typedef struct {
  int64_t dims[3];          /* columns, rows, slices (nx, ny, nz) */
  double spacing[3];        /* mm between voxel centres along the three axes */
  double origin[3];         /* LPS position of voxel (0,0,0)'s centre, mm */
  double direction[3][3];   /* unit axis directions as columns, LPS (see header comment) */
  const char *series_uid;   /* Series Instance UID (or the loader's "no-uid:..." name) */
  const char *study_uid;
  const char *frame_of_reference_uid;
  const char *modality;     /* "CT", "MR", ... */
  const char *patient_name; /* UTF-8, DICOM '^' separators kept */
  const char *patient_id;
  const char *study_date;   /* YYYYMMDD or "" */
  const char *series_description;
  const char *source_path;  /* the folder or DICOMDIR the user opened */
  size_t n_files;           /* the series' DICOM files (absolute or as opened) */
  const char *const *files;
} t3d_host_series;

/* Where the user is. Written by funcs->position(). */
typedef struct {
  t3d_plane plane;          /* the view that has (or last had) the pointer or focus */
  int64_t voxel[3];         /* the crosshair: column i, row j, slice k; the axial view shows
                               slice voxel[2], coronal row voxel[1], sagittal column voxel[0] */
} t3d_host_position;

typedef struct {
  uint8_t r, g, b, a;       /* a = 0 transparent ... 255 opaque (before the overall opacity) */
} t3d_host_rgba;

typedef void (*t3d_host_activate_fn)(t3d_host *host, void *user_data);
typedef void (*t3d_host_event_fn)(t3d_host *host, t3d_host_event event, void *user_data);
/* Return G_SOURCE_REMOVE to run once, G_SOURCE_CONTINUE to be called again. */
typedef gboolean (*t3d_host_main_fn)(void *user_data);

/* Host services. Host-owned; fields are only ever appended (check host->api_version before using
 * a field newer than your api_min). */
typedef struct {
  /* ---- the open series (API 1) ---- */
  /* NULL when no series is open. */
  const t3d_host_series *(*series)(t3d_host *host);
  /* The series' values (HU for CT), dims[0]*dims[1]*dims[2] floats, z-major, on the series grid.
   * Borrowed, valid until SERIES_CLOSED; NULL when no series is open. The host already holds
   * the volume, so this costs nothing; do not write to it. */
  const float *(*series_voxels)(t3d_host *host);
  /* Fills *out; T3D_PLUGIN_NO_SERIES when no series is open. */
  t3d_plugin_status (*position)(t3d_host *host, t3d_host_position *out);
  /* Moves the crosshair to voxel (i, j, k) (clamped to the grid) and makes plane the active view. */
  t3d_plugin_status (*set_position)(t3d_host *host, t3d_plane plane, const int64_t voxel[3]);
  /* Opens a folder, DICOMDIR or file as if chosen in File > Open, then the series with this
   * UID (NULL or "": the first series). Loading is asynchronous: SERIES_OPENED follows. */
  t3d_plugin_status (*open_series)(t3d_host *host, const char *path, const char *series_uid);

  /* ---- user interface (API 1) ---- */
  /* The main window, as parent for dialogs. */
  GtkWindow *(*main_window)(t3d_host *host);
  /* A button on the header bar. icon_name: a themed icon or NULL; label: translated text shown
   * when there is no icon, and its tooltip. Returns the button (borrowed: the host's, valid until
   * remove_item) so the plugin can change its sensitivity. widget_name: gtk_widget_set_name, the
   * handle test scripts use ("t3d-analyze"); may be NULL. */
  GtkWidget *(*add_toolbar_button)(t3d_host *host, const char *widget_name, const char *icon_name,
                                   const char *label, t3d_host_activate_fn activate, void *user_data);
  /* An item in the "Plugins" section of the main menu. accelerator: gtk_accelerator_parse syntax
   * ("<Primary><Shift>a") or NULL. Returns the menu item (borrowed, as above). */
  GtkWidget *(*add_menu_item)(t3d_host *host, const char *widget_name, const char *label,
                              const char *accelerator, t3d_host_activate_fn activate, void *user_data);
  /* Adds panel (any widget, usually floating; the host owns it from here on and shows it) as a
   * page of the side pane, titled title. Returns the panel. */
  GtkWidget *(*add_side_panel)(t3d_host *host, GtkWidget *panel, const char *title);
  /* Removes and destroys an item returned by one of the three add_* functions above (hold your
   * own reference to a panel if you want to keep it). */
  void (*remove_item)(t3d_host *host, GtkWidget *item);
  /* Shows text in the status bar (NULL or "" clears it). */
  void (*set_status)(t3d_host *host, const char *text);
  /* Shows a progress bar: fraction in [0, 1], or < 0 for "busy" (pulse); text is the stage name
   * ("Encoding volume"). progress_done hides it. */
  void (*set_progress)(t3d_host *host, double fraction, const char *text);
  void (*progress_done)(t3d_host *host);
  /* An info bar over the views (GTK_MESSAGE_INFO/WARNING/ERROR), closable by the user. */
  void (*show_message)(t3d_host *host, GtkMessageType type, const char *text);

  /* ---- label overlay on the series grid (API 1) ---- */
  /* Replaces the overlay. labels: dims[0]*dims[1]*dims[2] bytes, z-major, on the open series'
   * grid (nx, ny, nz must equal series()->dims, else T3D_PLUGIN_BAD_ARG); copied by the host.
   * colours: n_colours entries, colour of label l = colours[l]; labels >= n_colours are not drawn;
   * label 0 is background by convention (give it a = 0). opacity in [0, 1] scales every alpha.
   * All labels start visible. Drawn with nearest-neighbour sampling (labels never blend). */
  t3d_plugin_status (*overlay_set)(t3d_host *host, const uint8_t *labels, int64_t nx, int64_t ny, int64_t nz,
                                   const t3d_host_rgba *colours, size_t n_colours, double opacity);
  void (*overlay_set_opacity)(t3d_host *host, double opacity);
  void (*overlay_set_label_visible)(t3d_host *host, unsigned label, gboolean visible);
  void (*overlay_clear)(t3d_host *host);

  /* ---- events and the main loop (API 1) ---- */
  /* Calls fn(host, event, user_data) on the main thread for each event. Returns an id > 0. */
  unsigned (*add_listener)(t3d_host *host, t3d_host_event_fn fn, void *user_data);
  void (*remove_listener)(t3d_host *host, unsigned id);
  /* Thread-safe: schedules fn(user_data) on the GTK main loop (as g_idle_add_full with
   * G_PRIORITY_DEFAULT_IDLE). destroy (may be NULL) runs on user_data when the call is finished
   * or cancelled. Returns a source id > 0 for cancel_main_loop_call (main thread only). */
  unsigned (*call_on_main_loop)(t3d_host *host, t3d_host_main_fn fn, void *user_data, GDestroyNotify destroy);
  void (*cancel_main_loop_call)(t3d_host *host, unsigned id);
  /* New fields go here, with the API version that added them. */
} t3d_host_funcs;

/* One per loaded plugin; host-owned, fields only appended. */
struct t3d_host {
  uint32_t abi_version;         /* the host's T3D_PLUGIN_ABI_VERSION */
  uint32_t api_version;         /* the host's T3D_PLUGIN_API_VERSION (>= the plugin's api_min) */
  const t3d_host_funcs *funcs;
  const char *host_name;        /* "t3d-viewer" */
  const char *host_version;     /* "0.1.0" */
  const char *plugin_path;      /* the module file this plugin was loaded from */
  const char *locale_dir;       /* where the host's catalogs are (for the plugin's bindtextdomain) */
  void *plugin_data;            /* the plugin's own pointer; the host never touches it */
  void *host_private;           /* the host's; a plugin never touches it */
};

/* What the entry point returns: static storage in the plugin. abi_version and api_min come
 * first and stay first in every ABI version, so a host can always read them. */
typedef struct {
  uint32_t abi_version;         /* T3D_PLUGIN_ABI_VERSION the plugin was built with */
  uint32_t api_min;             /* lowest host API the plugin needs */
  const char *name;             /* short, untranslated ("T3D") */
  const char *version;          /* the plugin's own version ("0.1.0") */
  const char *description;      /* one line, untranslated (the host shows it as is) */
  /* Sets up the plugin; see "Life cycle". *message: NULL, or a g_malloc'ed translated reason. */
  t3d_plugin_status (*init)(t3d_host *host, char **message);
  /* Undoes init exactly. Not called when init failed. */
  void (*cleanup)(t3d_host *host);
} t3d_plugin_descriptor;

typedef const t3d_plugin_descriptor *(*t3d_plugin_describe_fn)(void);

/* In the plugin: defines the exported entry point for a static descriptor. Build the plugin as a
 * libtool module (-module -avoid-version -export-symbols-regex '^t3d_plugin_describe$'). */
#define T3D_PLUGIN_DEFINE(descriptor)                                              \
  G_MODULE_EXPORT const t3d_plugin_descriptor *t3d_plugin_describe(void);         \
  G_MODULE_EXPORT const t3d_plugin_descriptor *t3d_plugin_describe(void) { return &(descriptor); }

#ifdef __cplusplus
}
#endif
#endif
