/* t3d_plugins: the host side of t3d-plugin-abi.h -- loads plugin modules with GModule (local
 * binding), checks their ABI and API versions, runs init/cleanup, and keeps per plugin what it
 * added (items, listeners, main-loop calls) so unloading leaves nothing behind.
 * Not the host services themselves (the viewer implements those and passes its table in). */
#ifndef T3D_VIEWER_PLUGINS_H
#define T3D_VIEWER_PLUGINS_H

#include <glib.h>

#include "viewer-glue/t3d-plugin-abi.h"

G_BEGIN_DECLS

typedef struct t3d_plugins t3d_plugins;

/* funcs: the host's service table; its add_listener, remove_listener, call_on_main_loop and
 * cancel_main_loop_call fields should be the t3d_plugins_* functions below. funcs and the
 * strings must outlive the loader. host_private is stored in every t3d_host. */
t3d_plugins *t3d_plugins_new(const t3d_host_funcs *funcs, void *host_private, const char *host_name,
                             const char *host_version, const char *locale_dir);
/* Unloads every plugin (cleanup in reverse load order, then leftovers removed, module closed). */
void t3d_plugins_free(t3d_plugins *plugins); /* NULL is a no-op */

/* Loads one module. FALSE with a translated *error (naming the file, and the versions when
 * they do not fit) when it cannot be opened, has no entry point, does not fit, or init fails. */
gboolean t3d_plugins_load(t3d_plugins *plugins, const char *path, GError **error);
/* Loads every "*.so" in dir in name order, skipping file names already loaded from an earlier
 * folder (the user's copy overrides the system's); each refusal is passed to report (may be NULL, then it
 * goes to g_warning). A missing folder is not an error. Returns the number loaded. */
int t3d_plugins_load_dir(t3d_plugins *plugins, const char *dir, void (*report)(const char *message, void *data),
                         void *data);
guint t3d_plugins_count(const t3d_plugins *plugins);
/* Name of plugin i ("T3D 0.1.0"), borrowed; NULL out of range. */
const char *t3d_plugins_describe(const t3d_plugins *plugins, guint i);
/* Calls every listener of every plugin. */
void t3d_plugins_emit(t3d_plugins *plugins, t3d_host_event event);

/* Bookkeeping the viewer calls from its add_* / remove_item services. */
void t3d_plugins_track_item(t3d_host *host, GtkWidget *item);
void t3d_plugins_untrack_item(t3d_host *host, GtkWidget *item);

/* Generic services, usable directly as t3d_host_funcs fields. */
unsigned t3d_plugins_add_listener(t3d_host *host, t3d_host_event_fn fn, void *user_data);
void t3d_plugins_remove_listener(t3d_host *host, unsigned id);
unsigned t3d_plugins_call_on_main_loop(t3d_host *host, t3d_host_main_fn fn, void *user_data, GDestroyNotify destroy);
void t3d_plugins_cancel_main_loop_call(t3d_host *host, unsigned id);

G_END_DECLS
#endif
