/* The plugin's preferences: model file, device (auto, cpu, gpu) and index path, kept in a small
 * key file, $XDG_CONFIG_HOME/t3d/plugin.ini (GSettings would need an installed schema for three
 * values). Not the dialog that edits them (ui/prefs-dialog.h). No GTK. */
#ifndef T3D_PLUGIN_PREFS_H
#define T3D_PLUGIN_PREFS_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  char *model_path; /* "" = the engine's default model */
  char *device;     /* "auto", "cpu" or "gpu" */
  char *index_path; /* "" = the engine's default index */
} t3d_prefs;

/* $XDG_CONFIG_HOME/t3d/plugin.ini (g_get_user_config_dir). g_free. */
char *t3d_prefs_default_path(void);
/* Reads path; a missing file gives the defaults; an unreadable or malformed one gives the
 * defaults and *warning (translated; g_free) saying so. Never NULL. t3d_prefs_free. */
t3d_prefs *t3d_prefs_load(const char *path, char **warning);
/* Writes path (creating its folder, mode 0700); FALSE with *error. */
gboolean t3d_prefs_save(const t3d_prefs *p, const char *path, GError **error);
void t3d_prefs_free(t3d_prefs *p); /* NULL is a no-op */
/* Replaces a string field (g_free's the old value). */
void t3d_prefs_set(char **field, const char *value);

G_END_DECLS

#endif
