/* "Similar cases" in the plugin: runs `t3d search --json TEXT` in a worker process, fills the
 * search panel with the ranked cases (thumbnails when the result names one) and opens the
 * activated case in the host. Not the index: the engine searches; a build without the command
 * gets a message, not a crash.
 *
 * Accepted result shapes: a JSON array of cases, or an object with "results" (or "cases")
 * holding one. A case's fields, each optional: series_uid, path (or source_path), cosine (or
 * similarity, or score), patient_name (or patient_id, or patient), study_date, description (or
 * series_description), findings (array of names), thumbnail (a PNG file). */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <jansson.h>

#include "plugin/plugin-internal.h"

typedef struct {
  char *path, *series_uid;
  gboolean has_thumb; /* the result named a picture */
} search_hit;

static void hit_free(gpointer p)
{
  search_hit *h = p;
  g_free(h->path);
  g_free(h->series_uid);
  g_free(h);
}

static const char *str_field(json_t *o, const char *a, const char *b)
{
  const char *v = json_string_value(json_object_get(o, a));
  if (!v && b) v = json_string_value(json_object_get(o, b));
  return v ? v : "";
}

#define MAX_THUMBNAILS 20

static void next_thumbnail(t3d_plugin *pl);

static char *thumb_path(t3d_plugin *pl, guint rank)
{
  char name[32];
  g_snprintf(name, sizeof name, "%u.pgm", rank);
  return g_build_filename(pl->thumb_dir, name, NULL);
}

static void on_thumb_done(void *user, const t3d_worker_result *r)
{
  t3d_plugin *pl = user;
  char *path = thumb_path(pl, pl->thumb_next);
  GdkPixbuf *pb = r->outcome == T3D_WORKER_OK ? gdk_pixbuf_new_from_file(path, NULL) : NULL;
  if (pb) {
    t3d_search_panel_set_thumbnail(pl->search, pl->thumb_next, pb);
    g_object_unref(pb);
  }
  g_unlink(path);
  g_free(path);
  pl->thumb_next++;
  next_thumbnail(pl); /* frees this worker: safe inside its own callback (it holds a reference) */
}

static void next_thumbnail(t3d_plugin *pl)
{
  t3d_worker_free(pl->thumb_worker);
  pl->thumb_worker = NULL;
  for (; pl->thumb_next < pl->hits->len && pl->thumb_next < MAX_THUMBNAILS; pl->thumb_next++) {
    search_hit *h = g_ptr_array_index(pl->hits, pl->thumb_next);
    if (!*h->path || h->has_thumb) continue;
    if (!pl->thumb_dir && !(pl->thumb_dir = g_dir_make_tmp("t3d-thumbs-XXXXXX", NULL))) return;
    GPtrArray *argv = t3d_plugin_engine_argv(pl, "thumbnail", FALSE, FALSE);
    g_ptr_array_add(argv, g_strdup(h->path));
    g_ptr_array_add(argv, g_strdup("--output"));
    g_ptr_array_add(argv, thumb_path(pl, pl->thumb_next));
    if (*h->series_uid) {
      g_ptr_array_add(argv, g_strdup("--series"));
      g_ptr_array_add(argv, g_strdup(h->series_uid));
    }
    g_ptr_array_add(argv, NULL);
    pl->thumb_worker = t3d_worker_start((const char *const *)argv->pdata, NULL, NULL, on_thumb_done, pl, NULL);
    g_ptr_array_unref(argv);
    if (pl->thumb_worker) return; /* one at a time; no engine: placeholders stay */
  }
}

static void stop_thumbnails(t3d_plugin *pl)
{
  t3d_worker_free(pl->thumb_worker);
  pl->thumb_worker = NULL;
  pl->thumb_next = 0;
  if (pl->thumb_dir) {
    GDir *d = g_dir_open(pl->thumb_dir, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
      char *p = g_build_filename(pl->thumb_dir, n, NULL);
      g_unlink(p);
      g_free(p);
    }
    if (d) g_dir_close(d);
    g_rmdir(pl->thumb_dir);
    g_clear_pointer(&pl->thumb_dir, g_free);
  }
}

static void on_search_done(void *user, const t3d_worker_result *r)
{
  t3d_plugin *pl = user;
  t3d_search_panel_set_busy(pl->search, FALSE);
  if (r->outcome != T3D_WORKER_OK) {
    char *m = t3d_plugin_command_failure("search", r);
    t3d_search_panel_show_message(pl->search, GTK_MESSAGE_ERROR, m);
    g_free(m);
    return;
  }
  json_error_t je;
  json_t *root = json_loads(r->out, 0, &je), *list = root;
  if (json_is_object(root)) {
    list = json_object_get(root, "results");
    if (!list) list = json_object_get(root, "cases");
  }
  if (!json_is_array(list)) {
    t3d_search_panel_show_message(pl->search, GTK_MESSAGE_ERROR,
                                  _("The search did not return a list of cases; engine and plugin versions may "
                                    "differ."));
    json_decref(root);
    return;
  }
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *c = json_array_get(list, i);
    if (!json_is_object(c)) continue;
    const char *who = str_field(c, "patient_name", "patient_id"), *date = str_field(c, "study_date", NULL);
    if (!*who) who = str_field(c, "patient", NULL);
    /* the cosine of the embeddings reads as a similarity; a fused rank score does not */
    json_t *score = json_object_get(c, "cosine");
    if (!json_is_number(score)) score = json_object_get(c, "similarity");
    if (!json_is_number(score)) score = json_object_get(c, "score");
    char *title = g_strdup_printf("%s%s%s", who, *who && *date ? " — " : "", date);
    GString *detail = g_string_new(str_field(c, "description", "series_description"));
    json_t *fnd = json_object_get(c, "findings");
    for (size_t k = 0; json_is_array(fnd) && k < json_array_size(fnd) && k < 4; k++) {
      json_t *f = json_array_get(fnd, k);
      const char *name = json_is_string(f) ? json_string_value(f) : str_field(f, "name", NULL);
      g_string_append(detail, k == 0 ? (detail->len ? "; " : "") : ", ");
      g_string_append(detail, name);
    }
    GdkPixbuf *thumb = NULL;
    const char *tp = str_field(c, "thumbnail", NULL);
    if (*tp) thumb = gdk_pixbuf_new_from_file_at_size(tp, 64, 64, NULL);
    t3d_search_panel_add_result(pl->search, *title ? title : _("(unnamed case)"), detail->str,
                                json_is_number(score) ? json_number_value(score) : 0.0, thumb);
    if (thumb) g_object_unref(thumb);
    search_hit *h = g_new0(search_hit, 1);
    h->path = g_strdup(str_field(c, "path", "source_path"));
    h->series_uid = g_strdup(str_field(c, "series_uid", NULL));
    h->has_thumb = thumb != NULL;
    g_ptr_array_add(pl->hits, h);
    g_free(title);
    g_string_free(detail, TRUE);
  }
  if (pl->hits->len == 0)
    t3d_search_panel_show_message(pl->search, GTK_MESSAGE_INFO, _("No similar cases in the index."));
  json_decref(root);
  next_thumbnail(pl);
}

static void on_search(T3dSearchPanel *panel, const char *text, gpointer data)
{
  t3d_plugin *pl = data;
  t3d_worker_free(pl->search_worker); /* a newer search replaces a running one */
  pl->search_worker = NULL;
  stop_thumbnails(pl);
  t3d_search_panel_clear(panel);
  g_ptr_array_set_size(pl->hits, 0);
  GPtrArray *argv = t3d_plugin_engine_argv(pl, "search", TRUE, TRUE);
  g_ptr_array_add(argv, g_strdup("--json"));
  g_ptr_array_add(argv, g_strdup(text));
  g_ptr_array_add(argv, NULL);
  GError *err = NULL;
  pl->search_worker = t3d_worker_start((const char *const *)argv->pdata, NULL, NULL, on_search_done, pl, &err);
  g_ptr_array_unref(argv);
  if (!pl->search_worker) {
    t3d_search_panel_show_message(panel, GTK_MESSAGE_ERROR, err->message);
    g_clear_error(&err);
    return;
  }
  t3d_search_panel_set_busy(panel, TRUE);
}

static void on_open_case(T3dSearchPanel *panel, int rank, gpointer data)
{
  t3d_plugin *pl = data;
  if (rank < 0 || (guint)rank >= pl->hits->len) return;
  search_hit *h = g_ptr_array_index(pl->hits, (guint)rank);
  if (!*h->path) {
    t3d_search_panel_show_message(panel, GTK_MESSAGE_WARNING, _("The index does not say where this case's files are."));
    return;
  }
  if (pl->f->open_series(pl->host, h->path, h->series_uid) != T3D_PLUGIN_OK) {
    char *m = g_strdup_printf(_("The viewer could not open %s."), h->path);
    t3d_search_panel_show_message(panel, GTK_MESSAGE_ERROR, m);
    g_free(m);
  }
}

void t3d_plugin_search_init(t3d_plugin *pl)
{
  pl->hits = g_ptr_array_new_with_free_func(hit_free);
  pl->search = T3D_SEARCH_PANEL(t3d_search_panel_new());
  g_signal_connect(pl->search, "search", G_CALLBACK(on_search), pl);
  g_signal_connect(pl->search, "open-case", G_CALLBACK(on_open_case), pl);
  gtk_widget_show_all(GTK_WIDGET(pl->search));
  pl->search_side = pl->f->add_side_panel(pl->host, GTK_WIDGET(pl->search), _("Similar cases"));
}

void t3d_plugin_search_cleanup(t3d_plugin *pl)
{
  t3d_worker_free(pl->search_worker);
  pl->search_worker = NULL;
  stop_thumbnails(pl);
  pl->f->remove_item(pl->host, pl->search_side);
  g_ptr_array_unref(pl->hits);
  pl->hits = NULL;
}
