/* A test plugin for t3d-viewer: exercises the host services of t3d-plugin-abi.h (toolbar button,
 * menu item with accelerator, side panel, label overlay, per-label visibility, events, main-loop
 * calls) with a known overlay the viewer tests check pixel by pixel. Not installed; not an example
 * of analysis (that is plugin/).
 * Built with -DPROBE_WRONG_ABI or -DPROBE_TOO_NEW_API it is a plugin the loader must refuse. */
#include "config.h"

#include <string.h>

#include "viewer-glue/t3d-plugin-abi.h"

static GtkWidget *button, *hide_button, *item, *panel;
static unsigned listener_id;
static int series_events;

/* label 1: i < nx/2 and j < ny/2 (patient right and anterior for an axial series);
 * label 2: i >= nx/2 and j >= ny/2; everything else 0. */
static void set_overlay(t3d_host *host, void *data)
{
  const t3d_host_series *s = host->funcs->series(host);
  if (!s) {
    host->funcs->show_message(host, GTK_MESSAGE_WARNING, "probe: no series");
    return;
  }
  int64_t nx = s->dims[0], ny = s->dims[1], nz = s->dims[2];
  uint8_t *labels = g_malloc((size_t)(nx * ny * nz));
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++)
      for (int64_t i = 0; i < nx; i++)
        labels[(k * ny + j) * nx + i] = i < nx / 2 && j < ny / 2 ? 1 : i >= nx / 2 && j >= ny / 2 ? 2 : 0;
  static const t3d_host_rgba colours[3] = {{0, 0, 0, 0}, {255, 0, 0, 255}, {0, 255, 0, 255}};
  t3d_plugin_status st = host->funcs->overlay_set(host, labels, nx, ny, nz, colours, 3, 1.0);
  g_free(labels);
  host->funcs->set_status(host, st == T3D_PLUGIN_OK ? "probe: overlay set" : "probe: overlay refused");
}

static void hide_label2(t3d_host *host, void *data)
{
  host->funcs->overlay_set_label_visible(host, 2, FALSE);
  host->funcs->set_status(host, "probe: label 2 hidden");
}

static gboolean from_main_loop(void *data)
{
  t3d_host *host = data;
  host->funcs->set_progress(host, 1.0, "probe");
  host->funcs->progress_done(host);
  return G_SOURCE_REMOVE;
}

static void on_event(t3d_host *host, t3d_host_event event, void *data)
{
  if (event == T3D_HOST_EVENT_SERIES_OPENED) {
    series_events++;
    host->funcs->call_on_main_loop(host, from_main_loop, host, NULL);
  }
}

static t3d_plugin_status probe_init(t3d_host *host, char **message)
{
  button = host->funcs->add_toolbar_button(host, "t3d-probe-overlay", NULL, "Probe overlay", set_overlay, NULL);
  hide_button = host->funcs->add_toolbar_button(host, "t3d-probe-hide2", NULL, "Hide 2", hide_label2, NULL);
  item = host->funcs->add_menu_item(host, "t3d-probe-menu", "Probe _overlay", "<Primary><Shift>p", set_overlay, NULL);
  panel = host->funcs->add_side_panel(host, gtk_label_new("probe panel"), "Probe");
  listener_id = host->funcs->add_listener(host, on_event, NULL);
  return T3D_PLUGIN_OK;
}

static void probe_cleanup(t3d_host *host)
{
  host->funcs->remove_listener(host, listener_id);
  host->funcs->remove_item(host, panel);
  host->funcs->remove_item(host, item);
  host->funcs->remove_item(host, hide_button);
  host->funcs->remove_item(host, button);
  g_print("probe: cleanup after %d series\n", series_events);
}

static const t3d_plugin_descriptor descriptor = {
#if defined(PROBE_WRONG_ABI)
  T3D_PLUGIN_ABI_VERSION + 1, 1,
#elif defined(PROBE_TOO_NEW_API)
  T3D_PLUGIN_ABI_VERSION, T3D_PLUGIN_API_VERSION + 1,
#else
  T3D_PLUGIN_ABI_VERSION, 1,
#endif
  "probe", "1.0", "viewer test plugin", probe_init, probe_cleanup,
};

T3D_PLUGIN_DEFINE(descriptor)
