/* Plugin loading and bookkeeping for t3d-plugin-abi.h (see plugins.h). Knows GModule and the
 * ABI; knows nothing of the viewer's widgets beyond funcs->remove_item for leftovers. */
#include "config.h"

#include "viewer-glue/plugins.h"

#include <string.h>

#include <glib/gi18n.h>
#include <gmodule.h>

typedef struct {
  unsigned id;
  t3d_host_event_fn fn;
  void *user_data;
} listener;

typedef struct plugin plugin;

typedef struct {
  plugin *owner;
  t3d_host_main_fn fn;
  void *user_data;
  GDestroyNotify destroy;
  guint source;
} main_call;

struct plugin {
  t3d_host host; /* first: a t3d_host * is a plugin * */
  t3d_plugins *loader;
  GModule *module;
  const t3d_plugin_descriptor *desc;
  char *path;
  char *label;
  GPtrArray *items;     /* GtkWidget *, the plugin's toolbar buttons, menu items, panels */
  GArray *listeners;    /* listener */
  GMutex calls_lock;    /* calls is touched from any thread */
  GHashTable *calls;    /* main_call * set */
  unsigned next_listener;
};

struct t3d_plugins {
  const t3d_host_funcs *funcs;
  void *host_private;
  const char *host_name, *host_version, *locale_dir;
  GPtrArray *plugins; /* plugin *, load order */
};

#define T3D_PLUGINS_ERROR (g_quark_from_static_string("t3d-plugins"))

t3d_plugins *t3d_plugins_new(const t3d_host_funcs *funcs, void *host_private, const char *host_name,
                             const char *host_version, const char *locale_dir)
{
  t3d_plugins *p = g_new0(t3d_plugins, 1);
  p->funcs = funcs;
  p->host_private = host_private;
  p->host_name = host_name;
  p->host_version = host_version;
  p->locale_dir = locale_dir;
  p->plugins = g_ptr_array_new();
  return p;
}

static plugin *plugin_new(t3d_plugins *loader, const char *path)
{
  plugin *pl = g_new0(plugin, 1);
  pl->loader = loader;
  pl->path = g_strdup(path);
  pl->items = g_ptr_array_new();
  pl->listeners = g_array_new(FALSE, FALSE, sizeof(listener));
  g_mutex_init(&pl->calls_lock);
  pl->calls = g_hash_table_new(NULL, NULL);
  pl->host.abi_version = T3D_PLUGIN_ABI_VERSION;
  pl->host.api_version = T3D_PLUGIN_API_VERSION;
  pl->host.funcs = loader->funcs;
  pl->host.host_name = loader->host_name;
  pl->host.host_version = loader->host_version;
  pl->host.plugin_path = pl->path;
  pl->host.locale_dir = loader->locale_dir;
  pl->host.host_private = loader->host_private;
  return pl;
}

/* Removes everything the plugin left behind after its cleanup (or a failed init). */
static void remove_leftovers(plugin *pl)
{
  GPtrArray *ids = g_ptr_array_new();
  g_mutex_lock(&pl->calls_lock);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, pl->calls);
  while (g_hash_table_iter_next(&it, &key, NULL))
    g_ptr_array_add(ids, GUINT_TO_POINTER(((main_call *)key)->source));
  g_mutex_unlock(&pl->calls_lock);
  for (guint i = 0; i < ids->len; i++)
    g_source_remove(GPOINTER_TO_UINT(ids->pdata[i])); /* the destroy notify untracks it */
  g_ptr_array_free(ids, TRUE);
  g_array_set_size(pl->listeners, 0);
  while (pl->items->len > 0) {
    GtkWidget *item = pl->items->pdata[pl->items->len - 1];
    pl->loader->funcs->remove_item(&pl->host, item); /* calls t3d_plugins_untrack_item */
    if (pl->items->len > 0 && pl->items->pdata[pl->items->len - 1] == item)
      g_ptr_array_remove_index(pl->items, pl->items->len - 1);
  }
}

static void plugin_free(plugin *pl)
{
  if (!pl)
    return;
  remove_leftovers(pl);
  if (pl->module)
    g_module_close(pl->module);
  g_ptr_array_free(pl->items, TRUE);
  g_array_free(pl->listeners, TRUE);
  g_hash_table_destroy(pl->calls);
  g_mutex_clear(&pl->calls_lock);
  g_free(pl->path);
  g_free(pl->label);
  g_free(pl);
}

gboolean t3d_plugins_load(t3d_plugins *loader, const char *path, GError **error)
{
  plugin *pl = plugin_new(loader, path);
  char *message = NULL;
  gboolean ok = FALSE;

  /* BIND_LOCAL: a plugin's symbols never satisfy another plugin's references. */
  pl->module = g_module_open(path, G_MODULE_BIND_LOCAL);
  if (!pl->module) {
    g_set_error(error, T3D_PLUGINS_ERROR, 1, _("Plugin %s could not be loaded: %s"), path, g_module_error());
    goto cleanup;
  }
  gpointer sym = NULL;
  if (!g_module_symbol(pl->module, T3D_PLUGIN_ENTRY_SYMBOL, &sym) || !sym) {
    g_set_error(error, T3D_PLUGINS_ERROR, 2, _("%s is not a t3d plugin: it has no %s entry point"), path,
                T3D_PLUGIN_ENTRY_SYMBOL);
    goto cleanup;
  }
  pl->desc = ((t3d_plugin_describe_fn)sym)();
  if (!pl->desc) {
    g_set_error(error, T3D_PLUGINS_ERROR, 2, _("%s is not a t3d plugin: its entry point returned nothing"), path);
    goto cleanup;
  }
  /* Only abi_version and api_min may be read before these checks pass. */
  if (pl->desc->abi_version != T3D_PLUGIN_ABI_VERSION) {
    g_set_error(error, T3D_PLUGINS_ERROR, 3,
                _("Plugin %s was refused: it was built for plugin ABI %u, but this viewer has plugin ABI %u. "
                  "Rebuild the plugin against this viewer's t3d-plugin-abi.h."),
                path, (unsigned)pl->desc->abi_version, (unsigned)T3D_PLUGIN_ABI_VERSION);
    goto cleanup;
  }
  if (pl->desc->api_min > T3D_PLUGIN_API_VERSION) {
    g_set_error(error, T3D_PLUGINS_ERROR, 4,
                _("Plugin %s was refused: it needs plugin API %u or newer, but this viewer provides API %u. "
                  "Update the viewer."),
                path, (unsigned)pl->desc->api_min, (unsigned)T3D_PLUGIN_API_VERSION);
    goto cleanup;
  }
  if (!pl->desc->init || !pl->desc->cleanup || !pl->desc->name) {
    g_set_error(error, T3D_PLUGINS_ERROR, 2, _("%s is not a t3d plugin: its descriptor lacks a name, init or cleanup"),
                path);
    goto cleanup;
  }
  pl->label = g_strdup_printf("%s %s", pl->desc->name, pl->desc->version ? pl->desc->version : "");
  g_ptr_array_add(loader->plugins, pl); /* listed while init runs, so emit and items work */
  if (pl->desc->init(&pl->host, &message) != T3D_PLUGIN_OK) {
    g_ptr_array_remove(loader->plugins, pl);
    g_set_error(error, T3D_PLUGINS_ERROR, 5, _("Plugin %s (%s) failed to start: %s"), path, pl->label,
                message && *message ? message : _("no reason given"));
    goto cleanup;
  }
  ok = TRUE;
cleanup:
  g_free(message);
  if (!ok)
    plugin_free(pl);
  return ok;
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int t3d_plugins_load_dir(t3d_plugins *loader, const char *dir, void (*report)(const char *message, void *data),
                         void *data)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d)
    return 0;
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  const char *name;
  while ((name = g_dir_read_name(d)))
    if (g_str_has_suffix(name, "." G_MODULE_SUFFIX))
      g_ptr_array_add(names, g_strdup(name));
  g_dir_close(d);
  g_ptr_array_sort(names, compare_strings);
  int loaded = 0;
  for (guint i = 0; i < names->len; i++) {
    char *path = g_build_filename(dir, names->pdata[i], NULL);
    GError *err = NULL;
    const char *earlier = NULL;
    for (guint k = 0; k < loader->plugins->len && !earlier; k++) {
      char *base = g_path_get_basename(((plugin *)loader->plugins->pdata[k])->path);
      if (strcmp(base, names->pdata[i]) == 0)
        earlier = ((plugin *)loader->plugins->pdata[k])->path;
      g_free(base);
    }
    if (earlier) {
      /* The user's folder comes first: a plugin there overrides the system's copy. */
      g_message("%s: skipped, %s is already loaded", path, earlier);
    } else if (t3d_plugins_load(loader, path, &err)) {
      loaded++;
    } else if (report) {
      report(err->message, data);
    } else {
      g_warning("%s", err->message);
    }
    g_clear_error(&err);
    g_free(path);
  }
  g_ptr_array_free(names, TRUE);
  return loaded;
}

void t3d_plugins_free(t3d_plugins *loader)
{
  if (!loader)
    return;
  for (guint i = loader->plugins->len; i-- > 0;) {
    plugin *pl = loader->plugins->pdata[i];
    pl->desc->cleanup(&pl->host);
    plugin_free(pl);
  }
  g_ptr_array_free(loader->plugins, TRUE);
  g_free(loader);
}

guint t3d_plugins_count(const t3d_plugins *loader) { return loader->plugins->len; }

const char *t3d_plugins_describe(const t3d_plugins *loader, guint i)
{
  return i < loader->plugins->len ? ((plugin *)loader->plugins->pdata[i])->label : NULL;
}

void t3d_plugins_emit(t3d_plugins *loader, t3d_host_event event)
{
  for (guint i = 0; i < loader->plugins->len; i++) {
    plugin *pl = loader->plugins->pdata[i];
    /* A listener may remove itself or others: walk a copy. */
    GArray *copy = g_array_copy(pl->listeners);
    for (guint j = 0; j < copy->len; j++) {
      listener *l = &g_array_index(copy, listener, j);
      gboolean still = FALSE;
      for (guint k = 0; k < pl->listeners->len; k++)
        still |= g_array_index(pl->listeners, listener, k).id == l->id;
      if (still)
        l->fn(&pl->host, event, l->user_data);
    }
    g_array_free(copy, TRUE);
  }
}

void t3d_plugins_track_item(t3d_host *host, GtkWidget *item) { g_ptr_array_add(((plugin *)host)->items, item); }

void t3d_plugins_untrack_item(t3d_host *host, GtkWidget *item) { g_ptr_array_remove(((plugin *)host)->items, item); }

unsigned t3d_plugins_add_listener(t3d_host *host, t3d_host_event_fn fn, void *user_data)
{
  plugin *pl = (plugin *)host;
  listener l = {++pl->next_listener, fn, user_data};
  g_array_append_val(pl->listeners, l);
  return l.id;
}

void t3d_plugins_remove_listener(t3d_host *host, unsigned id)
{
  plugin *pl = (plugin *)host;
  for (guint k = 0; k < pl->listeners->len; k++)
    if (g_array_index(pl->listeners, listener, k).id == id) {
      g_array_remove_index(pl->listeners, k);
      return;
    }
}

static gboolean main_call_run(gpointer data)
{
  main_call *c = data;
  return c->fn(c->user_data);
}

static void main_call_done(gpointer data)
{
  main_call *c = data;
  g_mutex_lock(&c->owner->calls_lock);
  g_hash_table_remove(c->owner->calls, c);
  g_mutex_unlock(&c->owner->calls_lock);
  if (c->destroy)
    c->destroy(c->user_data);
  g_free(c);
}

unsigned t3d_plugins_call_on_main_loop(t3d_host *host, t3d_host_main_fn fn, void *user_data, GDestroyNotify destroy)
{
  plugin *pl = (plugin *)host;
  main_call *c = g_new0(main_call, 1);
  c->owner = pl;
  c->fn = fn;
  c->user_data = user_data;
  c->destroy = destroy;
  /* Held across the add so main_call_done (main thread) cannot run before the call is listed. */
  g_mutex_lock(&pl->calls_lock);
  c->source = g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, main_call_run, c, main_call_done);
  g_hash_table_add(pl->calls, c);
  guint id = c->source;
  g_mutex_unlock(&pl->calls_lock);
  return id;
}

void t3d_plugins_cancel_main_loop_call(t3d_host *host, unsigned id)
{
  plugin *pl = (plugin *)host;
  gboolean found = FALSE;
  g_mutex_lock(&pl->calls_lock);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, pl->calls);
  while (g_hash_table_iter_next(&it, &key, NULL))
    found |= ((main_call *)key)->source == id;
  g_mutex_unlock(&pl->calls_lock);
  if (found)
    g_source_remove(id);
}
