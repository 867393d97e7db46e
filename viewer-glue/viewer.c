/* t3d-viewer's main window: series browser, three GL slice views, window/level presets,
 * annotations and readout, background loading, and the host services of t3d-plugin-abi.h.
 * Not the GL drawing (ui/slice-view.c) nor the plugin bookkeeping (plugins.c). */
#include "config.h"

#include "viewer-glue/viewer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gi18n.h>

#include "core/dicom/dicom.h"

struct viewer_series_entry {
  t3d_dicom_series_info info;
  char **files; /* NULL-terminated */
  size_t n_files;
  GdkPixbuf *thumb;
  GtkWidget *image;
};

static void entry_free(gpointer p)
{
  viewer_series_entry *e = p;
  g_strfreev(e->files);
  g_clear_object(&e->thumb);
  g_free(e);
}

/* ---- window/level presets ------------------------------------------------------------- */

typedef struct {
  const char *key, *label;
  double center, width;
} wl_preset;

static const wl_preset presets[] = {
  {"lung", N_("Lung"), -600, 1500},
  {"mediastinum", N_("Mediastinum / soft tissue"), 40, 400},
  {"bone", N_("Bone"), 400, 1800},
  {"brain", N_("Brain"), 40, 80},
  {"abdomen", N_("Abdomen"), 50, 350},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

/* ---- annotations ---------------------------------------------------------------------- */

static void update_annotations(viewer *v)
{
  static const char *plane_names[3] = {N_("Axial"), N_("Coronal"), N_("Sagittal")};
  for (int p = 0; p < 3; p++) {
    const char *corners[4] = {NULL, NULL, NULL, NULL};
    char *tl = NULL, *tr = NULL, *bl = NULL, *br = NULL;
    if (v->volume) {
      const t3d_volume_meta *m = &v->volume->meta;
      char *name = g_strdelimit(g_strdup(m->patient_name), "^", ' ');
      tl = g_strdup_printf("%s\n%s: %s\n%s %s", name, _("ID"), m->patient_id, m->patient_sex, m->patient_birth_date);
      g_free(name);
      tr = g_strdup_printf("%s\n%s\n%s %s  %s %s", m->study_date, m->series_description, m->modality,
                           _("series"), m->series_number, _(plane_names[p]));
      int axes[3], flip[2];
      t3d_slice_view_axes(v->volume, (t3d_view_plane)p, axes, flip);
      int64_t n = axes[2] == 0 ? v->volume->nx : axes[2] == 1 ? v->volume->ny : v->volume->nz;
      double lps[3];
      t3d_volume_index_to_lps(v->volume, (double)v->cross[0], (double)v->cross[1], (double)v->cross[2], lps);
      /* Translators: slice number of count, then the crosshair's position in patient coordinates */
      bl = g_strdup_printf(_("Slice %lld / %lld\n%s %.1f mm"), (long long)v->cross[axes[2]] + 1, (long long)n,
                           p == 0 ? "S" : p == 1 ? "P" : "L", lps[p == 0 ? 2 : p == 1 ? 1 : 0]);
      /* Translators: window width and level (centre) in Hounsfield units */
      br = g_strdup_printf(_("W %.0f  L %.0f"), v->wl_width, v->wl_center);
    }
    corners[0] = tl;
    corners[1] = tr;
    corners[2] = bl;
    corners[3] = br;
    t3d_slice_view_set_annotations(v->views[p], corners);
    g_free(tl);
    g_free(tr);
    g_free(bl);
    g_free(br);
  }
}

void viewer_set_window(viewer *v, double center, double width)
{
  v->wl_center = center;
  v->wl_width = width;
  for (int p = 0; p < 3; p++)
    t3d_slice_view_set_window(v->views[p], center, width);
  update_annotations(v);
}

gboolean viewer_apply_preset(viewer *v, const char *key)
{
  for (size_t i = 0; i < N_PRESETS; i++)
    if (strcmp(presets[i].key, key) == 0) {
      gtk_combo_box_set_active_id(GTK_COMBO_BOX(v->preset_combo), key); /* -> on_preset_changed */
      viewer_set_window(v, presets[i].center, presets[i].width);
      return TRUE;
    }
  return FALSE;
}

static void on_preset_changed(GtkComboBox *combo, viewer *v)
{
  const char *id = gtk_combo_box_get_active_id(combo);
  for (size_t i = 0; id && i < N_PRESETS; i++)
    if (strcmp(presets[i].key, id) == 0)
      viewer_set_window(v, presets[i].center, presets[i].width);
}

/* ---- crosshair and readout -------------------------------------------------------------- */

void viewer_set_crosshair(viewer *v, const int64_t voxel[3])
{
  if (!v->volume)
    return;
  int64_t n[3] = {v->volume->nx, v->volume->ny, v->volume->nz};
  for (int a = 0; a < 3; a++)
    v->cross[a] = CLAMP(voxel[a], 0, n[a] - 1);
  for (int p = 0; p < 3; p++)
    t3d_slice_view_set_crosshair(v->views[p], v->cross);
  update_annotations(v);
  if (v->plugins)
    t3d_plugins_emit(v->plugins, T3D_HOST_EVENT_POSITION_CHANGED);
}

static void view_crosshair_changed(t3d_slice_view *view, const int64_t voxel[3], void *data)
{
  viewer *v = data;
  v->active_plane = (t3d_plane)t3d_slice_view_plane(view);
  viewer_set_crosshair(v, voxel);
}

static void view_window_changed(t3d_slice_view *view, double center, double width, void *data)
{
  viewer *v = data;
  gtk_combo_box_set_active(GTK_COMBO_BOX(v->preset_combo), -1);
  viewer_set_window(v, center, width);
}

static void view_pointer_moved(t3d_slice_view *view, gboolean inside, const double voxel[3], void *data)
{
  viewer *v = data;
  if (!inside || !v->volume) {
    gtk_label_set_text(GTK_LABEL(v->readout), "");
    return;
  }
  v->active_plane = (t3d_plane)t3d_slice_view_plane(view);
  int64_t i = CLAMP(llround(voxel[0]), 0, v->volume->nx - 1), j = CLAMP(llround(voxel[1]), 0, v->volume->ny - 1),
          k = CLAMP(llround(voxel[2]), 0, v->volume->nz - 1);
  double lps[3];
  t3d_volume_index_to_lps(v->volume, voxel[0], voxel[1], voxel[2], lps);
  float hu = v->volume->data[(k * v->volume->ny + j) * v->volume->nx + i];
  /* Translators: pointer position in patient coordinates (LPS, mm), the voxel, and its value */
  char *text = g_strdup_printf(_("L %.1f  P %.1f  S %.1f mm   voxel %lld, %lld, %lld   %.0f HU"), lps[0], lps[1],
                               lps[2], (long long)i, (long long)j, (long long)k, hu);
  if (v->labels) {
    uint8_t l = v->labels[(k * v->volume->ny + j) * v->volume->nx + i];
    char *more = g_strdup_printf(_("%s   label %u"), text, (unsigned)l);
    g_free(text);
    text = more;
  }
  gtk_label_set_text(GTK_LABEL(v->readout), text);
  g_free(text);
}

static void view_rendered(t3d_slice_view *view, void *data)
{
  viewer *v = data;
  /* T3D_VIEWER_SCREENSHOT=DIR: once a series is shown, each view writes DIR/<plane>.png. */
  if (v->screenshot_dir && v->volume && !v->screenshots_taken) {
    gboolean all = TRUE;
    for (int p = 0; p < 3; p++)
      all &= t3d_slice_view_frames(v->views[p]) >= 2;
    if (all) {
      static const char *names[3] = {"axial.png", "coronal.png", "sagittal.png"};
      g_mkdir_with_parents(v->screenshot_dir, 0755);
      for (int p = 0; p < 3; p++) {
        char *path = g_build_filename(v->screenshot_dir, names[p], NULL);
        t3d_slice_view_request_screenshot(v->views[p], path);
        g_free(path);
      }
      v->screenshots_taken = TRUE;
    }
  }
}

/* ---- overlay ---------------------------------------------------------------------------- */

static void overlay_refresh(viewer *v)
{
  uint8_t lut[256][4];
  memset(lut, 0, sizeof lut);
  for (size_t l = 0; l < v->n_colours; l++) {
    lut[l][0] = v->colours[l].r;
    lut[l][1] = v->colours[l].g;
    lut[l][2] = v->colours[l].b;
    lut[l][3] = v->label_visible[l] ? (uint8_t)lround(v->colours[l].a * CLAMP(v->opacity, 0, 1)) : 0;
  }
  for (int p = 0; p < 3; p++)
    t3d_slice_view_set_overlay(v->views[p], v->labels, v->labels ? (const uint8_t(*)[4])lut : NULL);
}

gboolean viewer_overlay_shown(viewer *v) { return v->labels != NULL; }

/* ---- showing a loaded series ---------------------------------------------------------------- */

static void close_series(viewer *v)
{
  if (!v->volume)
    return;
  if (v->plugins)
    t3d_plugins_emit(v->plugins, T3D_HOST_EVENT_SERIES_CLOSED);
  g_clear_pointer(&v->labels, g_free);
  for (int p = 0; p < 3; p++) {
    t3d_slice_view_set_overlay(v->views[p], NULL, NULL);
    t3d_slice_view_set_volume(v->views[p], NULL);
  }
  t3d_volume_free(v->volume);
  v->volume = NULL;
  v->shown_entry = -1;
  memset(&v->host_series, 0, sizeof v->host_series);
  update_annotations(v);
}

static void show_volume(viewer *v, int entry_index, t3d_volume *vol)
{
  close_series(v);
  viewer_series_entry *e = v->entries->pdata[entry_index];
  v->volume = vol;
  v->shown_entry = entry_index;
  t3d_host_series *s = &v->host_series;
  s->dims[0] = vol->nx;
  s->dims[1] = vol->ny;
  s->dims[2] = vol->nz;
  for (int a = 0; a < 3; a++) {
    s->spacing[a] = vol->spacing[a];
    s->origin[a] = vol->origin[a];
    for (int c = 0; c < 3; c++)
      s->direction[a][c] = vol->dir[a][c];
  }
  s->series_uid = vol->meta.series_uid;
  s->study_uid = vol->meta.study_uid;
  s->frame_of_reference_uid = vol->meta.frame_of_reference_uid;
  s->modality = vol->meta.modality;
  s->patient_name = vol->meta.patient_name;
  s->patient_id = vol->meta.patient_id;
  s->study_date = vol->meta.study_date;
  s->series_description = vol->meta.series_description;
  s->source_path = v->source_path;
  s->n_files = e->n_files;
  s->files = (const char *const *)e->files;
  for (int p = 0; p < 3; p++)
    t3d_slice_view_set_volume(v->views[p], vol);
  v->cross[0] = vol->nx / 2;
  v->cross[1] = vol->ny / 2;
  v->cross[2] = vol->nz / 2;
  for (int p = 0; p < 3; p++)
    t3d_slice_view_set_crosshair(v->views[p], v->cross);
  viewer_set_window(v, v->wl_center, v->wl_width);

  char *name = g_strdelimit(g_strdup(vol->meta.patient_name), "^", ' ');
  char *sub = g_strdup_printf("%s — %s (%lld × %lld × %lld)", name, vol->meta.series_description, (long long)vol->nx,
                              (long long)vol->ny, (long long)vol->nz);
  gtk_header_bar_set_subtitle(GTK_HEADER_BAR(v->header), sub);
  g_free(sub);
  g_free(name);
  GtkListBoxRow *row = gtk_list_box_get_row_at_index(GTK_LIST_BOX(v->browser), entry_index);
  if (row)
    gtk_list_box_select_row(GTK_LIST_BOX(v->browser), row);
  char *status = g_strdup_printf(_("Series loaded: %s"), vol->meta.series_uid);
  gtk_label_set_text(GTK_LABEL(v->status), status);
  g_free(status);
  if (v->plugins)
    t3d_plugins_emit(v->plugins, T3D_HOST_EVENT_SERIES_OPENED);
}

/* ---- series browser ------------------------------------------------------------------------- */

static void fill_browser(viewer *v)
{
  GList *children = gtk_container_get_children(GTK_CONTAINER(v->browser));
  for (GList *l = children; l; l = l->next)
    gtk_widget_destroy(l->data);
  g_list_free(children);
  for (guint i = 0; i < v->entries->len; i++) {
    viewer_series_entry *e = v->entries->pdata[i];
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    e->image = gtk_image_new_from_icon_name("image-loading-symbolic", GTK_ICON_SIZE_DIALOG);
    gtk_widget_set_size_request(e->image, 96, 96);
    gtk_box_pack_start(GTK_BOX(box), e->image, FALSE, FALSE, 0);
    const t3d_volume_meta *m = &e->info.meta;
    /* Translators: series browser entry: number, description, then modality and counts */
    char *text = g_markup_printf_escaped(_("<b>%s %s</b>\n%s\n%s, %lld images"), _("Series"), m->series_number,
                                         *m->series_description ? m->series_description : _("(no description)"),
                                         m->modality, (long long)e->info.slices);
    GtkWidget *label = gtk_label_new(NULL);
    gtk_label_set_markup(GTK_LABEL(label), text);
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    gtk_label_set_ellipsize(GTK_LABEL(label), PANGO_ELLIPSIZE_END);
    gtk_label_set_max_width_chars(GTK_LABEL(label), 22);
    g_free(text);
    gtk_box_pack_start(GTK_BOX(box), label, TRUE, TRUE, 0);
    gtk_widget_show_all(box);
    gtk_list_box_insert(GTK_LIST_BOX(v->browser), box, -1);
    if (e->thumb)
      gtk_image_set_from_pixbuf(GTK_IMAGE(e->image), e->thumb);
  }
}

static void on_row_activated(GtkListBox *box, GtkListBoxRow *row, viewer *v)
{
  int i = gtk_list_box_row_get_index(row);
  if (i < 0 || (guint)i >= v->entries->len || i == v->shown_entry || v->loading)
    return;
  viewer_series_entry *e = v->entries->pdata[i];
  char *path = g_strdup(v->source_path);
  viewer_open(v, path, e->info.meta.series_uid);
  g_free(path);
}

/* ---- background loading --------------------------------------------------------------------- */

typedef enum { MSG_SCANNED, MSG_VOLUME, MSG_THUMB, MSG_ERROR, MSG_DONE } msg_kind;

typedef struct {
  viewer *v;
  unsigned generation;
  msg_kind kind;
  GPtrArray *entries; /* MSG_SCANNED */
  int index;          /* MSG_VOLUME, MSG_THUMB */
  t3d_volume *volume; /* MSG_VOLUME */
  GdkPixbuf *thumb;   /* MSG_THUMB */
  char *text;         /* MSG_ERROR, MSG_SCANNED (notes summary) */
} load_msg;

typedef struct {
  viewer *v;
  unsigned generation;
  char *path, *uid;
  gboolean thumbs; /* FALSE when the browser already has them (switching series) */
} load_job;

static GPtrArray *running_threads; /* GThread *, joined at quit */
static GMutex threads_lock;

static void show_error(viewer *v, const char *text);

static gboolean deliver(gpointer data)
{
  load_msg *m = data;
  viewer *v = m->v;
  if (m->generation != v->generation)
    goto cleanup;
  switch (m->kind) {
  case MSG_SCANNED:
    if (m->entries->len == v->entries->len && m->entries->len > 0 && v->entries->len > 0 &&
        strcmp(((viewer_series_entry *)m->entries->pdata[0])->info.meta.series_uid,
               ((viewer_series_entry *)v->entries->pdata[0])->info.meta.series_uid) == 0)
      break; /* the same folder again (switching series): keep the browser and its thumbnails */
    g_ptr_array_free(v->entries, TRUE);
    v->entries = m->entries;
    m->entries = NULL;
    fill_browser(v);
    gtk_label_set_text(GTK_LABEL(v->status), m->text);
    break;
  case MSG_VOLUME:
    show_volume(v, m->index, m->volume);
    m->volume = NULL;
    break;
  case MSG_THUMB:
    if ((guint)m->index < v->entries->len) {
      viewer_series_entry *e = v->entries->pdata[m->index];
      g_set_object(&e->thumb, m->thumb);
      if (e->image)
        gtk_image_set_from_pixbuf(GTK_IMAGE(e->image), m->thumb);
    }
    break;
  case MSG_ERROR:
    show_error(v, m->text);
    gtk_label_set_text(GTK_LABEL(v->status), m->text);
    break;
  case MSG_DONE:
    v->loading = FALSE;
    break;
  }
cleanup:
  if (m->entries)
    g_ptr_array_free(m->entries, TRUE);
  t3d_volume_free(m->volume);
  g_clear_object(&m->thumb);
  g_free(m->text);
  g_free(m);
  return G_SOURCE_REMOVE;
}

static void post(load_job *job, msg_kind kind, int index, GPtrArray *entries, t3d_volume *vol, GdkPixbuf *thumb,
                 char *text)
{
  load_msg *m = g_new0(load_msg, 1);
  m->v = job->v;
  m->generation = job->generation;
  m->kind = kind;
  m->index = index;
  m->entries = entries;
  m->volume = vol;
  m->thumb = thumb;
  m->text = text;
  g_idle_add(deliver, m);
}

/* The middle axial slice, soft-tissue window, longest side 96 pixels, radiological orientation. */
static GdkPixbuf *make_thumbnail(const t3d_volume *vol)
{
  int axes[3], flip[2];
  t3d_slice_view_axes(vol, T3D_VIEW_AXIAL, axes, flip);
  int64_t n[3] = {vol->nx, vol->ny, vol->nz}, stride[3] = {1, vol->nx, vol->nx * vol->ny};
  double pw = n[axes[0]] * vol->spacing[axes[0]], ph = n[axes[1]] * vol->spacing[axes[1]];
  int tw = pw >= ph ? 96 : MAX(1, (int)lround(96 * pw / ph)), th = ph >= pw ? 96 : MAX(1, (int)lround(96 * ph / pw));
  GdkPixbuf *pb = gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, tw, th);
  guchar *px = gdk_pixbuf_get_pixels(pb);
  int rs = gdk_pixbuf_get_rowstride(pb);
  int64_t base = (n[axes[2]] / 2) * stride[axes[2]];
  for (int y = 0; y < th; y++)
    for (int x = 0; x < tw; x++) {
      int64_t u = MIN(n[axes[0]] - 1, (int64_t)((x + 0.5) * n[axes[0]] / tw));
      int64_t w = MIN(n[axes[1]] - 1, (int64_t)((y + 0.5) * n[axes[1]] / th));
      if (flip[0])
        u = n[axes[0]] - 1 - u;
      if (flip[1])
        w = n[axes[1]] - 1 - w;
      float hu = vol->data[base + u * stride[axes[0]] + w * stride[axes[1]]];
      double g = CLAMP((hu - (40 - 200)) / 400.0, 0, 1);
      guchar c = (guchar)lround(g * 255);
      px[y * rs + x * 3] = px[y * rs + x * 3 + 1] = px[y * rs + x * 3 + 2] = c;
    }
  return pb;
}

static gboolean cancelled(load_job *job) { return (unsigned)g_atomic_int_get((gint *)&job->v->generation) != job->generation; }

static gpointer load_thread(gpointer data)
{
  load_job *job = data;
  t3d_dicom_scan *scan = NULL;
  t3d_status st = t3d_dicom_scan_path(job->path, &scan);
  if (st != T3D_OK) {
    post(job, MSG_ERROR, 0, NULL, NULL, NULL, g_strdup_printf(_("Cannot read %s: %s"), job->path, t3d_error_detail()));
    goto done;
  }
  size_t ns = t3d_dicom_scan_series_count(scan);
  if (ns == 0) {
    post(job, MSG_ERROR, 0, NULL, NULL, NULL,
         g_strdup_printf(_("No DICOM image series in %s (%zu files examined)"), job->path,
                         t3d_dicom_scan_file_count(scan)));
    goto done;
  }
  GPtrArray *entries = g_ptr_array_new_with_free_func(entry_free);
  size_t chosen = 0;
  for (size_t i = 0; i < ns; i++) {
    viewer_series_entry *e = g_new0(viewer_series_entry, 1);
    e->info = *t3d_dicom_scan_series(scan, i);
    e->n_files = t3d_dicom_series_file_count(scan, i);
    e->files = g_new0(char *, e->n_files + 1);
    for (size_t f = 0; f < e->n_files; f++)
      e->files[f] = g_strdup(t3d_dicom_series_file(scan, i, f));
    if (job->uid && strcmp(job->uid, e->info.meta.series_uid) == 0)
      chosen = i;
    g_ptr_array_add(entries, e);
  }
  post(job, MSG_SCANNED, 0, entries, NULL, NULL,
       g_strdup_printf(ngettext("%zu series found, loading…", "%zu series found, loading…", ns), ns));

  t3d_volume *vol = NULL;
  st = t3d_dicom_load_series(scan, chosen, NULL, &vol);
  if (st != T3D_OK) {
    post(job, MSG_ERROR, 0, NULL, NULL, NULL, g_strdup_printf(_("Cannot load the series: %s"), t3d_error_detail()));
  } else {
    if (job->thumbs)
      post(job, MSG_THUMB, (int)chosen, NULL, NULL, make_thumbnail(vol), NULL);
    post(job, MSG_VOLUME, (int)chosen, NULL, vol, NULL, NULL);
  }
  for (size_t i = 0; job->thumbs && i < ns && !cancelled(job); i++) {
    if (i == chosen)
      continue;
    t3d_volume *t = NULL;
    if (t3d_dicom_load_series(scan, i, NULL, &t) == T3D_OK)
      post(job, MSG_THUMB, (int)i, NULL, NULL, make_thumbnail(t), NULL);
    t3d_volume_free(t);
  }
done:
  post(job, MSG_DONE, 0, NULL, NULL, NULL, NULL);
  t3d_dicom_scan_free(scan);
  g_free(job->path);
  g_free(job->uid);
  g_free(job);
  return NULL;
}

void viewer_open(viewer *v, const char *path, const char *series_uid)
{
  gboolean same = v->source_path && strcmp(v->source_path, path) == 0 && v->entries->len > 0;
  g_atomic_int_inc((gint *)&v->generation);
  load_job *job = g_new0(load_job, 1);
  job->v = v;
  job->generation = v->generation;
  job->path = g_strdup(path);
  job->uid = series_uid && *series_uid ? g_strdup(series_uid) : NULL;
  job->thumbs = !same;
  g_free(v->source_path);
  v->source_path = g_strdup(path);
  v->loading = TRUE;
  char *status = g_strdup_printf(_("Reading %s…"), path);
  gtk_label_set_text(GTK_LABEL(v->status), status);
  g_free(status);
  g_mutex_lock(&threads_lock);
  if (!running_threads)
    running_threads = g_ptr_array_new();
  g_ptr_array_add(running_threads, g_thread_new("t3d-load", load_thread, job));
  g_mutex_unlock(&threads_lock);
}

/* ---- messages --------------------------------------------------------------------------- */

static void on_infobar_response(GtkInfoBar *bar, gint response, gpointer data) { gtk_widget_destroy(GTK_WIDGET(bar)); }

static void add_infobar(viewer *v, GtkMessageType type, const char *text)
{
  GtkWidget *bar = gtk_info_bar_new();
  gtk_info_bar_set_message_type(GTK_INFO_BAR(bar), type);
  gtk_info_bar_set_show_close_button(GTK_INFO_BAR(bar), TRUE);
  GtkWidget *label = gtk_label_new(text);
  gtk_label_set_line_wrap(GTK_LABEL(label), TRUE);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_label_set_selectable(GTK_LABEL(label), TRUE);
  gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(bar))), label);
  g_signal_connect(bar, "response", G_CALLBACK(on_infobar_response), NULL);
  gtk_box_pack_start(GTK_BOX(v->infobars), bar, FALSE, FALSE, 0);
  gtk_widget_show_all(bar);
}

static void show_error(viewer *v, const char *text) { add_infobar(v, GTK_MESSAGE_ERROR, text); }

/* ---- host services (t3d-plugin-abi.h) ----------------------------------------------------- */

static viewer *host_viewer(t3d_host *host) { return host->host_private; }

static const t3d_host_series *h_series(t3d_host *host)
{
  viewer *v = host_viewer(host);
  return v->volume ? &v->host_series : NULL;
}

static const float *h_series_voxels(t3d_host *host)
{
  viewer *v = host_viewer(host);
  return v->volume ? v->volume->data : NULL;
}

static t3d_plugin_status h_position(t3d_host *host, t3d_host_position *out)
{
  viewer *v = host_viewer(host);
  if (!v->volume)
    return T3D_PLUGIN_NO_SERIES;
  out->plane = v->active_plane;
  for (int a = 0; a < 3; a++)
    out->voxel[a] = v->cross[a];
  return T3D_PLUGIN_OK;
}

static t3d_plugin_status h_set_position(t3d_host *host, t3d_plane plane, const int64_t voxel[3])
{
  viewer *v = host_viewer(host);
  if (!v->volume)
    return T3D_PLUGIN_NO_SERIES;
  if (plane > T3D_PLANE_SAGITTAL)
    return T3D_PLUGIN_BAD_ARG;
  v->active_plane = plane;
  viewer_set_crosshair(v, voxel);
  return T3D_PLUGIN_OK;
}

static t3d_plugin_status h_open_series(t3d_host *host, const char *path, const char *series_uid)
{
  if (!path || !*path)
    return T3D_PLUGIN_BAD_ARG;
  viewer_open(host_viewer(host), path, series_uid);
  return T3D_PLUGIN_OK;
}

static GtkWindow *h_main_window(t3d_host *host) { return GTK_WINDOW(host_viewer(host)->window); }

typedef struct {
  t3d_host *host;
  t3d_host_activate_fn fn;
  void *data;
} activation;

static void on_activate_item(GtkWidget *w, activation *a) { a->fn(a->host, a->data); }

static void free_activation(gpointer data, GClosure *closure) { g_free(data); }

static void connect_activation(GtkWidget *w, const char *signal, t3d_host *host, t3d_host_activate_fn fn, void *data)
{
  activation *a = g_new0(activation, 1);
  a->host = host;
  a->fn = fn;
  a->data = data;
  g_signal_connect_data(w, signal, G_CALLBACK(on_activate_item), a, free_activation, 0);
}

static GtkWidget *h_add_toolbar_button(t3d_host *host, const char *widget_name, const char *icon_name,
                                       const char *label, t3d_host_activate_fn activate, void *user_data)
{
  viewer *v = host_viewer(host);
  GtkWidget *b = icon_name && *icon_name ? gtk_button_new_from_icon_name(icon_name, GTK_ICON_SIZE_BUTTON)
                                         : gtk_button_new_with_mnemonic(label ? label : "?");
  if (label)
    gtk_widget_set_tooltip_text(b, label);
  if (widget_name)
    gtk_widget_set_name(b, widget_name);
  if (activate)
    connect_activation(b, "clicked", host, activate, user_data);
  gtk_box_pack_start(GTK_BOX(v->toolbar_box), b, FALSE, FALSE, 0);
  gtk_widget_show(b);
  t3d_plugins_track_item(host, b);
  return b;
}

static GtkWidget *h_add_menu_item(t3d_host *host, const char *widget_name, const char *label, const char *accelerator,
                                  t3d_host_activate_fn activate, void *user_data)
{
  viewer *v = host_viewer(host);
  GtkWidget *item = gtk_menu_item_new_with_mnemonic(label ? label : "?");
  if (widget_name)
    gtk_widget_set_name(item, widget_name);
  if (activate)
    connect_activation(item, "activate", host, activate, user_data);
  if (accelerator && *accelerator) {
    guint key = 0;
    GdkModifierType mods = 0;
    gtk_accelerator_parse(accelerator, &key, &mods);
    if (key) {
      GtkAccelGroup *group = g_object_get_data(G_OBJECT(v->window), "t3d-accel-group");
      gtk_widget_add_accelerator(item, "activate", group, key, mods, GTK_ACCEL_VISIBLE);
    } else {
      g_warning("%s: accelerator \"%s\" not understood", host->plugin_path, accelerator);
    }
  }
  /* Plugin items go after the separator that ends the viewer's own items, in order. */
  GList *children = gtk_container_get_children(GTK_CONTAINER(v->menu));
  int pos = g_list_index(children, v->plugin_menu_sep) + 1;
  for (GList *l = g_list_nth(children, (guint)pos); l && g_object_get_data(l->data, "t3d-plugin-item"); l = l->next)
    pos++;
  g_list_free(children);
  g_object_set_data(G_OBJECT(item), "t3d-plugin-item", GINT_TO_POINTER(1));
  gtk_menu_shell_insert(GTK_MENU_SHELL(v->menu), item, pos);
  gtk_widget_show(item);
  gtk_widget_show(v->plugin_menu_sep);
  t3d_plugins_track_item(host, item);
  return item;
}

static GtkWidget *h_add_side_panel(t3d_host *host, GtkWidget *panel, const char *title)
{
  viewer *v = host_viewer(host);
  gtk_notebook_append_page(GTK_NOTEBOOK(v->side), panel, gtk_label_new(title ? title : ""));
  gtk_widget_show_all(panel);
  gtk_widget_show(v->side);
  t3d_plugins_track_item(host, panel);
  return panel;
}

static void h_remove_item(t3d_host *host, GtkWidget *item)
{
  viewer *v = host_viewer(host);
  t3d_plugins_untrack_item(host, item);
  gtk_widget_destroy(item);
  if (v->side && gtk_notebook_get_n_pages(GTK_NOTEBOOK(v->side)) == 0)
    gtk_widget_hide(v->side);
}

static void h_set_status(t3d_host *host, const char *text)
{
  gtk_label_set_text(GTK_LABEL(host_viewer(host)->status), text ? text : "");
}

static void h_set_progress(t3d_host *host, double fraction, const char *text)
{
  viewer *v = host_viewer(host);
  gtk_widget_show(v->progress);
  if (fraction < 0)
    gtk_progress_bar_pulse(GTK_PROGRESS_BAR(v->progress));
  else
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(v->progress), CLAMP(fraction, 0, 1));
  gtk_progress_bar_set_text(GTK_PROGRESS_BAR(v->progress), text);
}

static void h_progress_done(t3d_host *host) { gtk_widget_hide(host_viewer(host)->progress); }

static void h_show_message(t3d_host *host, GtkMessageType type, const char *text)
{
  add_infobar(host_viewer(host), type, text ? text : "");
}

static t3d_plugin_status h_overlay_set(t3d_host *host, const uint8_t *labels, int64_t nx, int64_t ny, int64_t nz,
                                       const t3d_host_rgba *colours, size_t n_colours, double opacity)
{
  viewer *v = host_viewer(host);
  if (!v->volume)
    return T3D_PLUGIN_NO_SERIES;
  if (!labels || nx != v->volume->nx || ny != v->volume->ny || nz != v->volume->nz || (n_colours && !colours)) {
    g_warning("%s: overlay %lldx%lldx%lld does not match the series grid %lldx%lldx%lld", host->plugin_path,
              (long long)nx, (long long)ny, (long long)nz, (long long)v->volume->nx, (long long)v->volume->ny,
              (long long)v->volume->nz);
    return T3D_PLUGIN_BAD_ARG;
  }
  g_free(v->labels);
  v->labels = g_memdup2(labels, (gsize)(nx * ny * nz));
  v->n_colours = MIN(n_colours, 256);
  memset(v->colours, 0, sizeof v->colours);
  if (v->n_colours)
    memcpy(v->colours, colours, v->n_colours * sizeof *colours);
  for (int l = 0; l < 256; l++)
    v->label_visible[l] = TRUE;
  v->opacity = CLAMP(opacity, 0, 1);
  overlay_refresh(v);
  return T3D_PLUGIN_OK;
}

static void h_overlay_set_opacity(t3d_host *host, double opacity)
{
  viewer *v = host_viewer(host);
  v->opacity = CLAMP(opacity, 0, 1);
  if (v->labels)
    overlay_refresh(v);
}

static void h_overlay_set_label_visible(t3d_host *host, unsigned label, gboolean visible)
{
  viewer *v = host_viewer(host);
  if (label < 256)
    v->label_visible[label] = visible;
  if (v->labels)
    overlay_refresh(v);
}

static void h_overlay_clear(t3d_host *host)
{
  viewer *v = host_viewer(host);
  g_clear_pointer(&v->labels, g_free);
  overlay_refresh(v);
}

static const t3d_host_funcs host_funcs = {
  .series = h_series,
  .series_voxels = h_series_voxels,
  .position = h_position,
  .set_position = h_set_position,
  .open_series = h_open_series,
  .main_window = h_main_window,
  .add_toolbar_button = h_add_toolbar_button,
  .add_menu_item = h_add_menu_item,
  .add_side_panel = h_add_side_panel,
  .remove_item = h_remove_item,
  .set_status = h_set_status,
  .set_progress = h_set_progress,
  .progress_done = h_progress_done,
  .show_message = h_show_message,
  .overlay_set = h_overlay_set,
  .overlay_set_opacity = h_overlay_set_opacity,
  .overlay_set_label_visible = h_overlay_set_label_visible,
  .overlay_clear = h_overlay_clear,
  .add_listener = t3d_plugins_add_listener,
  .remove_listener = t3d_plugins_remove_listener,
  .call_on_main_loop = t3d_plugins_call_on_main_loop,
  .cancel_main_loop_call = t3d_plugins_cancel_main_loop_call,
};

static void report_plugin_refusal(const char *message, void *data)
{
  viewer *v = data;
  g_printerr("t3d-viewer: %s\n", message);
  add_infobar(v, GTK_MESSAGE_WARNING, message);
}

void viewer_load_plugins(viewer *v)
{
  v->plugins = t3d_plugins_new(&host_funcs, v, "t3d-viewer", PACKAGE_VERSION, v->locale_dir);
  /* T3D_PLUGIN_PATH (folders or module files, ':'-separated) replaces the default folders,
   * so that tests see only their own plugins. Otherwise: the user's folder, then the system's. */
  const char *env = g_getenv("T3D_PLUGIN_PATH");
  char **dirs = NULL;
  if (env && *env) {
    dirs = g_strsplit(env, G_SEARCHPATH_SEPARATOR_S, -1);
  } else {
    dirs = g_new0(char *, 3);
    dirs[0] = g_build_filename(g_get_user_data_dir(), "t3d", "plugins", NULL);
    dirs[1] = g_strdup(T3D_PLUGINDIR);
  }
  for (char **d = dirs; *d; d++) {
    if (!**d)
      continue;
    if (g_file_test(*d, G_FILE_TEST_IS_DIR)) {
      t3d_plugins_load_dir(v->plugins, *d, report_plugin_refusal, v);
    } else if (g_file_test(*d, G_FILE_TEST_EXISTS)) {
      GError *err = NULL;
      if (!t3d_plugins_load(v->plugins, *d, &err)) {
        report_plugin_refusal(err->message, v);
        g_error_free(err);
      }
    }
  }
  g_strfreev(dirs);
  for (guint i = 0; i < t3d_plugins_count(v->plugins); i++)
    g_message("plugin loaded: %s", t3d_plugins_describe(v->plugins, i));
}

/* ---- window ---------------------------------------------------------------------------- */

static void on_open_response(GtkNativeDialog *dialog, gint response, viewer *v)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    char *path = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(dialog));
    if (path)
      viewer_open(v, path, NULL);
    g_free(path);
  }
  g_object_unref(dialog);
}

static void action_open(GSimpleAction *a, GVariant *p, gpointer data)
{
  viewer *v = data;
  /* Folders are what DICOM usually comes as; a DICOMDIR can be typed or picked in "Other". */
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new(_("Open DICOM folder"), GTK_WINDOW(v->window),
                                                             GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Open"),
                                                             _("_Cancel"));
  g_signal_connect(dialog, "response", G_CALLBACK(on_open_response), v);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void on_open_file_response(GtkNativeDialog *dialog, gint response, viewer *v) { on_open_response(dialog, response, v); }

static void action_open_dicomdir(GSimpleAction *a, GVariant *p, gpointer data)
{
  viewer *v = data;
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new(_("Open DICOMDIR or DICOM file"), GTK_WINDOW(v->window),
                                                             GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  g_signal_connect(dialog, "response", G_CALLBACK(on_open_file_response), v);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void action_quit(GSimpleAction *a, GVariant *p, gpointer data) { viewer_quit(data, 0); }

static void action_preset(GSimpleAction *a, GVariant *p, gpointer data)
{
  viewer_apply_preset(data, g_variant_get_string(p, NULL));
}

static void action_about(GSimpleAction *a, GVariant *p, gpointer data)
{
  viewer *v = data;
  gtk_show_about_dialog(GTK_WINDOW(v->window), "program-name", "t3d-viewer", "version", PACKAGE_VERSION, "comments",
                        _("Reference DICOM viewer for the t3d plugin: axial, coronal and sagittal CT views."),
                        "logo-icon-name", "image-x-generic", NULL);
}

static void add_shortcut(GtkWidget *group, const char *accel, const char *title)
{
  GtkWidget *s = g_object_new(GTK_TYPE_SHORTCUTS_SHORTCUT, "accelerator", accel, "title", title, "visible", TRUE, NULL);
  gtk_container_add(GTK_CONTAINER(group), s);
}

static void action_shortcuts(GSimpleAction *a, GVariant *p, gpointer data)
{
  viewer *v = data;
  GtkWidget *win = g_object_new(GTK_TYPE_SHORTCUTS_WINDOW, "modal", TRUE, "transient-for", v->window, NULL);
  GtkWidget *section = g_object_new(GTK_TYPE_SHORTCUTS_SECTION, "section-name", "main", "visible", TRUE, NULL);
  GtkWidget *general = g_object_new(GTK_TYPE_SHORTCUTS_GROUP, "title", _("General"), "visible", TRUE, NULL);
  add_shortcut(general, "<Primary>o", _("Open a DICOM folder"));
  add_shortcut(general, "<Primary><Shift>o", _("Open a DICOMDIR or file"));
  add_shortcut(general, "<Primary>q", _("Quit"));
  add_shortcut(general, "<Primary>question", _("Keyboard shortcuts"));
  GtkWidget *views = g_object_new(GTK_TYPE_SHORTCUTS_GROUP, "title", _("Views"), "visible", TRUE, NULL);
  add_shortcut(views, "Up Down", _("Previous / next slice (also the scroll wheel)"));
  add_shortcut(views, "Page_Up Page_Down", _("Ten slices back / forward"));
  add_shortcut(views, "plus minus", _("Zoom in / out (also Ctrl + scroll wheel)"));
  add_shortcut(views, "Home", _("Fit the image to the view"));
  add_shortcut(views, "<Primary>1", _("Lung window"));
  add_shortcut(views, "<Primary>2", _("Mediastinum / soft tissue window"));
  add_shortcut(views, "<Primary>3", _("Bone window"));
  add_shortcut(views, "<Primary>4", _("Brain window"));
  add_shortcut(views, "<Primary>5", _("Abdomen window"));
  GtkWidget *mouse = g_object_new(GTK_TYPE_SHORTCUTS_GROUP, "title", _("Mouse"), "visible", TRUE, NULL);
  GtkWidget *s1 = g_object_new(GTK_TYPE_SHORTCUTS_SHORTCUT, "shortcut-type", GTK_SHORTCUT_GESTURE, "icon",
                               NULL, "title", _("Left drag: window (left/right) and level (up/down); click: move the crosshair"),
                               "visible", TRUE, NULL);
  gtk_container_add(GTK_CONTAINER(mouse), s1);
  GtkWidget *s2 = g_object_new(GTK_TYPE_SHORTCUTS_SHORTCUT, "shortcut-type", GTK_SHORTCUT_GESTURE, "title",
                               _("Middle drag or Shift + left drag: pan; right drag: zoom"), "visible", TRUE, NULL);
  gtk_container_add(GTK_CONTAINER(mouse), s2);
  gtk_container_add(GTK_CONTAINER(section), general);
  gtk_container_add(GTK_CONTAINER(section), views);
  gtk_container_add(GTK_CONTAINER(section), mouse);
  gtk_container_add(GTK_CONTAINER(win), section);
  gtk_widget_show(win);
}

static gboolean on_delete(GtkWidget *w, GdkEvent *ev, viewer *v);

static GtkWidget *menu_item(GtkWidget *menu, const char *label, const char *action, const char *target)
{
  GtkWidget *item = gtk_menu_item_new_with_mnemonic(label);
  if (target) {
    char *detailed = g_strdup_printf("%s::%s", action, target);
    gtk_actionable_set_detailed_action_name(GTK_ACTIONABLE(item), detailed);
    g_free(detailed);
  } else
    gtk_actionable_set_action_name(GTK_ACTIONABLE(item), action);
  gtk_menu_shell_append(GTK_MENU_SHELL(menu), item);
  return item;
}

viewer *viewer_new(GtkApplication *app, const char *locale_dir)
{
  viewer *v = g_new0(viewer, 1);
  v->app = app;
  v->entries = g_ptr_array_new_with_free_func(entry_free);
  v->shown_entry = -1;
  v->wl_center = 40;
  v->wl_width = 400;
  v->opacity = 0.5;
  v->locale_dir = g_strdup(locale_dir);
  const char *shots = g_getenv("T3D_VIEWER_SCREENSHOT");
  v->screenshot_dir = shots && *shots ? g_strdup(shots) : NULL;

  static const GActionEntry actions[] = {
    {"open", action_open, NULL, NULL, NULL, {0}},
    {"open-dicomdir", action_open_dicomdir, NULL, NULL, NULL, {0}},
    {"quit", action_quit, NULL, NULL, NULL, {0}},
    {"preset", action_preset, "s", NULL, NULL, {0}},
    {"about", action_about, NULL, NULL, NULL, {0}},
    {"shortcuts", action_shortcuts, NULL, NULL, NULL, {0}},
  };
  g_action_map_add_action_entries(G_ACTION_MAP(app), actions, G_N_ELEMENTS(actions), v);
  static const char *open_acc[] = {"<Primary>o", NULL}, *dir_acc[] = {"<Primary><Shift>o", NULL},
                    *quit_acc[] = {"<Primary>q", NULL}, *help_acc[] = {"<Primary>question", "F1", NULL};
  gtk_application_set_accels_for_action(app, "app.open", open_acc);
  gtk_application_set_accels_for_action(app, "app.open-dicomdir", dir_acc);
  gtk_application_set_accels_for_action(app, "app.quit", quit_acc);
  gtk_application_set_accels_for_action(app, "app.shortcuts", help_acc);
  for (size_t i = 0; i < N_PRESETS; i++) {
    char *action = g_strdup_printf("app.preset::%s", presets[i].key);
    char *acc = g_strdup_printf("<Primary>%zu", i + 1);
    const char *accs[] = {acc, NULL};
    gtk_application_set_accels_for_action(app, action, accs);
    g_free(action);
    g_free(acc);
  }

  v->window = gtk_application_window_new(app);
  gtk_window_set_default_size(GTK_WINDOW(v->window), 1280, 800);
  g_signal_connect(v->window, "delete-event", G_CALLBACK(on_delete), v);
  GtkAccelGroup *group = gtk_accel_group_new();
  gtk_window_add_accel_group(GTK_WINDOW(v->window), group);
  g_object_set_data_full(G_OBJECT(v->window), "t3d-accel-group", group, g_object_unref);

  v->header = gtk_header_bar_new();
  gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(v->header), TRUE);
  gtk_header_bar_set_title(GTK_HEADER_BAR(v->header), "t3d-viewer");
  gtk_header_bar_set_subtitle(GTK_HEADER_BAR(v->header), _("Open a DICOM folder (Ctrl+O)"));
  gtk_window_set_titlebar(GTK_WINDOW(v->window), v->header);

  GtkWidget *open = gtk_button_new_from_icon_name("document-open-symbolic", GTK_ICON_SIZE_BUTTON);
  gtk_widget_set_tooltip_text(open, _("Open a DICOM folder"));
  gtk_widget_set_name(open, "t3d-open");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(open), "app.open");
  gtk_header_bar_pack_start(GTK_HEADER_BAR(v->header), open);

  v->preset_combo = gtk_combo_box_text_new();
  gtk_widget_set_name(v->preset_combo, "t3d-presets");
  gtk_widget_set_tooltip_text(v->preset_combo, _("Window/level preset"));
  for (size_t i = 0; i < N_PRESETS; i++)
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(v->preset_combo), presets[i].key, _(presets[i].label));
  gtk_combo_box_set_active_id(GTK_COMBO_BOX(v->preset_combo), "mediastinum");
  g_signal_connect(v->preset_combo, "changed", G_CALLBACK(on_preset_changed), v);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(v->header), v->preset_combo);

  v->menu = gtk_menu_new();
  menu_item(v->menu, _("_Open Folder…"), "app.open", NULL);
  menu_item(v->menu, _("Open _DICOMDIR or File…"), "app.open-dicomdir", NULL);
  gtk_menu_shell_append(GTK_MENU_SHELL(v->menu), gtk_separator_menu_item_new());
  for (size_t i = 0; i < N_PRESETS; i++)
    menu_item(v->menu, _(presets[i].label), "app.preset", presets[i].key);
  v->plugin_menu_sep = gtk_separator_menu_item_new();
  gtk_menu_shell_append(GTK_MENU_SHELL(v->menu), v->plugin_menu_sep);
  /* plugin items are inserted here */
  gtk_menu_shell_append(GTK_MENU_SHELL(v->menu), gtk_separator_menu_item_new());
  menu_item(v->menu, _("_Keyboard Shortcuts"), "app.shortcuts", NULL);
  menu_item(v->menu, _("_About t3d-viewer"), "app.about", NULL);
  menu_item(v->menu, _("_Quit"), "app.quit", NULL);
  gtk_widget_show_all(v->menu);
  GtkWidget *menu_button = gtk_menu_button_new();
  gtk_widget_set_name(menu_button, "t3d-menu");
  gtk_button_set_image(GTK_BUTTON(menu_button), gtk_image_new_from_icon_name("open-menu-symbolic", GTK_ICON_SIZE_BUTTON));
  gtk_menu_button_set_popup(GTK_MENU_BUTTON(menu_button), v->menu);
  gtk_header_bar_pack_end(GTK_HEADER_BAR(v->header), menu_button);
  v->toolbar_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
  gtk_header_bar_pack_end(GTK_HEADER_BAR(v->header), v->toolbar_box);

  /* body: browser | (info bars, views, status) | side panels */
  GtkWidget *outer = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
  GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_widget_set_size_request(scroll, 220, -1);
  v->browser = gtk_list_box_new();
  gtk_widget_set_name(v->browser, "t3d-series-browser");
  g_signal_connect(v->browser, "row-activated", G_CALLBACK(on_row_activated), v);
  gtk_container_add(GTK_CONTAINER(scroll), v->browser);
  gtk_paned_pack1(GTK_PANED(outer), scroll, FALSE, FALSE);

  GtkWidget *inner = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
  GtkWidget *center = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  v->infobars = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  gtk_box_pack_start(GTK_BOX(center), v->infobars, FALSE, FALSE, 0);
  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 2);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 2);
  gtk_grid_set_row_homogeneous(GTK_GRID(grid), TRUE);
  gtk_grid_set_column_homogeneous(GTK_GRID(grid), FALSE);
  static const t3d_slice_view_callbacks cbs = {view_crosshair_changed, view_window_changed, view_pointer_moved,
                                                view_rendered};
  for (int p = 0; p < 3; p++)
    v->views[p] = t3d_slice_view_new((t3d_view_plane)p, &cbs, v);
  GtkWidget *axial = t3d_slice_view_widget(v->views[0]);
  gtk_widget_set_size_request(axial, 420, 420);
  gtk_grid_attach(GTK_GRID(grid), axial, 0, 0, 1, 2);
  gtk_grid_attach(GTK_GRID(grid), t3d_slice_view_widget(v->views[1]), 1, 0, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), t3d_slice_view_widget(v->views[2]), 1, 1, 1, 1);
  gtk_box_pack_start(GTK_BOX(center), grid, TRUE, TRUE, 0);
  GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_set_margin_start(bar, 6);
  gtk_widget_set_margin_end(bar, 6);
  v->status = gtk_label_new("");
  gtk_widget_set_name(v->status, "t3d-status");
  gtk_label_set_ellipsize(GTK_LABEL(v->status), PANGO_ELLIPSIZE_END);
  gtk_label_set_xalign(GTK_LABEL(v->status), 0);
  gtk_box_pack_start(GTK_BOX(bar), v->status, TRUE, TRUE, 0);
  v->readout = gtk_label_new("");
  gtk_widget_set_name(v->readout, "t3d-readout");
  gtk_box_pack_start(GTK_BOX(bar), v->readout, FALSE, FALSE, 0);
  v->progress = gtk_progress_bar_new();
  gtk_widget_set_name(v->progress, "t3d-progress");
  gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(v->progress), TRUE);
  gtk_widget_set_valign(v->progress, GTK_ALIGN_CENTER);
  gtk_widget_set_no_show_all(v->progress, TRUE);
  gtk_box_pack_end(GTK_BOX(bar), v->progress, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(center), bar, FALSE, FALSE, 4);
  gtk_paned_pack1(GTK_PANED(inner), center, TRUE, FALSE);
  v->side = gtk_notebook_new();
  gtk_widget_set_name(v->side, "t3d-side-panels");
  gtk_widget_set_size_request(v->side, 320, -1);
  gtk_widget_set_no_show_all(v->side, TRUE);
  gtk_paned_pack2(GTK_PANED(inner), v->side, FALSE, FALSE);
  gtk_paned_pack2(GTK_PANED(outer), inner, TRUE, FALSE);
  gtk_container_add(GTK_CONTAINER(v->window), outer);
  update_annotations(v);
  gtk_widget_show_all(v->window);
  return v;
}

const char *viewer_status_text(viewer *v) { return gtk_label_get_text(GTK_LABEL(v->status)); }

guint viewer_series_count(viewer *v) { return v->entries->len; }

const char *viewer_series_uid(viewer *v, guint i, gboolean *has_thumbnail)
{
  if (i >= v->entries->len)
    return NULL;
  viewer_series_entry *e = v->entries->pdata[i];
  if (has_thumbnail)
    *has_thumbnail = e->thumb != NULL;
  return e->info.meta.series_uid;
}

gboolean viewer_select_series(viewer *v, guint i)
{
  GtkListBoxRow *row = gtk_list_box_get_row_at_index(GTK_LIST_BOX(v->browser), (int)i);
  if (!row)
    return FALSE;
  g_signal_emit_by_name(v->browser, "row-activated", row);
  return TRUE;
}

gboolean viewer_screenshot_window(viewer *v, const char *path, GError **error)
{
  /* gtk_widget_draw reads the GL areas back through gdk_cairo_draw_from_gl. */
  int w = gtk_widget_get_allocated_width(v->window), h = gtk_widget_get_allocated_height(v->window);
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(surf);
  gtk_widget_draw(v->window, cr);
  cairo_destroy(cr);
  GdkPixbuf *pb = gdk_pixbuf_get_from_surface(surf, 0, 0, w, h);
  cairo_surface_destroy(surf);
  gboolean ok = pb && gdk_pixbuf_save(pb, path, "png", error, NULL);
  g_clear_object(&pb);
  return ok;
}

void viewer_quit(viewer *v, int code)
{
  if (!v->window)
    return;
  v->exit_code = code;
  g_atomic_int_inc((gint *)&v->generation); /* loading messages from now on are dropped */
  close_series(v);                          /* plugins hear SERIES_CLOSED */
  /* Plugins go while the window they added to still exists, so their cleanup can remove items. */
  t3d_plugins_free(v->plugins);
  v->plugins = NULL;
  GtkWidget *w = v->window;
  v->window = NULL;
  gtk_widget_destroy(w);
}

static gboolean on_delete(GtkWidget *w, GdkEvent *ev, viewer *v)
{
  viewer_quit(v, v->exit_code);
  return TRUE;
}

void viewer_free(viewer *v)
{
  if (!v)
    return;
  g_atomic_int_inc((gint *)&v->generation); /* loaders stop after their current series */
  for (;;) {
    g_mutex_lock(&threads_lock);
    GThread *t = running_threads && running_threads->len ? g_ptr_array_steal_index(running_threads, 0) : NULL;
    g_mutex_unlock(&threads_lock);
    if (!t)
      break;
    g_thread_join(t);
  }
  while (g_main_context_iteration(NULL, FALSE)) /* deliver (and drop) their last messages */
    ;
  if (running_threads)
    g_ptr_array_free(running_threads, TRUE);
  running_threads = NULL;
  viewer_script_free(v->script);
  t3d_plugins_free(v->plugins); /* NULL unless the window never closed through viewer_quit */
  if (v->volume)
    t3d_volume_free(v->volume);
  g_free(v->labels);
  g_ptr_array_free(v->entries, TRUE);
  g_free(v->source_path);
  g_free(v->locale_dir);
  g_free(v->screenshot_dir);
  g_free(v);
}
