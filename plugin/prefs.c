/* Preferences key file (see prefs.h). Group [t3d]: model, device, index. */
#include "config.h"

#include "plugin/prefs.h"

#include <errno.h>
#include <string.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#define GROUP "t3d"

char *t3d_prefs_default_path(void) { return g_build_filename(g_get_user_config_dir(), "t3d", "plugin.ini", NULL); }

void t3d_prefs_set(char **field, const char *value)
{
  char *old = *field;
  *field = g_strdup(value ? value : "");
  g_free(old);
}

static char *get(GKeyFile *kf, const char *key, const char *def)
{
  char *v = kf ? g_key_file_get_string(kf, GROUP, key, NULL) : NULL;
  return v ? v : g_strdup(def);
}

t3d_prefs *t3d_prefs_load(const char *path, char **warning)
{
  t3d_prefs *p = g_new0(t3d_prefs, 1);
  GKeyFile *kf = g_key_file_new();
  GError *err = NULL;
  *warning = NULL;
  if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
    if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      *warning = g_strdup_printf(_("The plugin's settings in %s could not be read (%s); defaults are used."), path,
                                 err->message);
    g_clear_error(&err);
    g_key_file_free(kf);
    kf = NULL;
  }
  p->model_path = get(kf, "model", "");
  p->device = get(kf, "device", "auto");
  p->index_path = get(kf, "index", "");
  if (strcmp(p->device, "auto") != 0 && strcmp(p->device, "cpu") != 0 && strcmp(p->device, "gpu") != 0) {
    if (!*warning)
      *warning = g_strdup_printf(_("Unknown device \"%s\" in %s; \"auto\" is used."), p->device, path);
    t3d_prefs_set(&p->device, "auto");
  }
  if (kf) g_key_file_free(kf);
  return p;
}

gboolean t3d_prefs_save(const t3d_prefs *p, const char *path, GError **error)
{
  GKeyFile *kf = g_key_file_new();
  g_key_file_set_comment(kf, NULL, NULL, " t3d viewer plugin settings (Preferences dialog)", NULL);
  g_key_file_set_string(kf, GROUP, "model", p->model_path);
  g_key_file_set_string(kf, GROUP, "device", p->device);
  g_key_file_set_string(kf, GROUP, "index", p->index_path);
  char *dir = g_path_get_dirname(path);
  gboolean ok = g_mkdir_with_parents(dir, 0700) == 0;
  if (!ok)
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), _("Cannot create %s: %s"), dir,
                g_strerror(errno));
  else
    ok = g_key_file_save_to_file(kf, path, error);
  g_free(dir);
  g_key_file_free(kf);
  return ok;
}

void t3d_prefs_free(t3d_prefs *p)
{
  if (!p) return;
  g_free(p->model_path);
  g_free(p->device);
  g_free(p->index_path);
  g_free(p);
}
