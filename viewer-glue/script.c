/* Test scripts for t3d-viewer (--test-script FILE or T3D_VIEWER_SCRIPT): drive the real widgets
 * the way a user would (click buttons by widget name, press accelerators, set entries), wait for
 * results, take screenshots, quit with a status. For tests and demos, not a macro language.
 *
 * One command a line; '#' starts a comment. Waits fail (exit status 1) after their timeout.
 *   wait-series [SECONDS]          a series is shown and loading (thumbnails too) finished
 *   frames N                       every view drew N more frames
 *   sleep MS
 *   click NAME                     activate the widget named NAME (button, menu item, toggle)
 *   wait-sensitive NAME [SECONDS]  until widget NAME exists and is sensitive
 *   set NAME VALUE                 entry text, range/spin value, toggle 0/1, combo box id
 *   key ACCEL                      press an accelerator in the main window ("<Primary><Shift>a")
 *   preset KEY                     lung | mediastinum | bone | brain | abdomen
 *   window CENTER WIDTH            window/level in HU
 *   crosshair I J K                move the crosshair to voxel (i, j, k)
 *   zoom FACTOR                    every view (pan kept)
 *   fit                            every view: zoom 1, no pan (the Home key)
 *   pointer VIEW FX FY             move the pointer to (FX, FY) of the view (fractions of its size)
 *   click-view VIEW FX FY          left click there (moves the crosshair)
 *   drag-view VIEW BUTTON FX0 FY0 FX1 FY1   press, move, release (1: window/level, 2: pan, 3: zoom)
 *   scroll VIEW N                  N wheel steps (positive: down, next slice)
 *   screenshot VIEW PATH           VIEW: axial | coronal | sagittal | window
 *   select-series N                activate row N (from 0) of the series browser
 *   wait-status TEXT [SECONDS]     until the status bar contains TEXT
 *   wait-overlay [SECONDS]         until a plugin has set a label overlay
 *   wait-infobar TEXT [SECONDS]    until an info bar shows TEXT
 *   expect-plugins N               fail unless exactly N plugins are loaded
 *   print WHAT                     status | plugins | position | series | browser | readout | window
 *   quit [CODE] */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viewer-glue/viewer.h"

typedef enum { WAIT_NONE, WAIT_SERIES, WAIT_FRAMES, WAIT_SLEEP, WAIT_SENSITIVE, WAIT_STATUS, WAIT_OVERLAY, WAIT_INFOBAR } wait_kind;

struct viewer_script {
  viewer *v;
  char **lines;
  char *origin;
  guint pc, source;
  wait_kind wait;
  gint64 deadline;
  unsigned frame_target[3];
  char *wait_arg;
  char *line_text;
};

viewer_script *viewer_script_new(viewer *v, const char *text, const char *origin)
{
  viewer_script *s = g_new0(viewer_script, 1);
  s->v = v;
  s->lines = g_strsplit(text, "\n", -1);
  s->origin = g_strdup(origin);
  return s;
}

void viewer_script_free(viewer_script *s)
{
  if (!s)
    return;
  if (s->source)
    g_source_remove(s->source);
  g_strfreev(s->lines);
  g_free(s->origin);
  g_free(s->wait_arg);
  g_free(s);
}

static void fail(viewer_script *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(viewer_script *s, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_printerr("t3d-viewer: %s:%u: %s\n", s->origin, s->pc, msg);
  g_free(msg);
  s->source = 0;
  viewer_quit(s->v, 1);
}

/* Depth-first search, internal children included, over every toplevel (menus and dialogs too). */
static void find_in(GtkWidget *w, const char *name, GtkWidget **found);
static void find_cb(GtkWidget *w, gpointer data)
{
  void **d = data;
  find_in(w, d[0], (GtkWidget **)d[1]);
}
static void find_in(GtkWidget *w, const char *name, GtkWidget **found)
{
  if (*found)
    return;
  if (g_strcmp0(gtk_widget_get_name(w), name) == 0) {
    *found = w;
    return;
  }
  if (GTK_IS_CONTAINER(w)) {
    void *d[2] = {(void *)name, found};
    gtk_container_forall(GTK_CONTAINER(w), find_cb, d);
  }
  if (GTK_IS_MENU_ITEM(w) && gtk_menu_item_get_submenu(GTK_MENU_ITEM(w)))
    find_in(gtk_menu_item_get_submenu(GTK_MENU_ITEM(w)), name, found);
}

static GtkWidget *find_widget(viewer *v, const char *name)
{
  GtkWidget *found = NULL;
  if (v->menu)
    find_in(v->menu, name, &found);
  GList *tops = gtk_window_list_toplevels();
  for (GList *l = tops; l && !found; l = l->next)
    find_in(l->data, name, &found);
  g_list_free(tops);
  return found;
}

static gboolean label_contains(GtkWidget *w, const char *text);
static void label_cb(GtkWidget *w, gpointer data)
{
  void **d = data;
  if (!*(gboolean *)d[1] && label_contains(w, d[0]))
    *(gboolean *)d[1] = TRUE;
}
static gboolean label_contains(GtkWidget *w, const char *text)
{
  if (GTK_IS_LABEL(w) && strstr(gtk_label_get_text(GTK_LABEL(w)), text))
    return TRUE;
  gboolean hit = FALSE;
  if (GTK_IS_CONTAINER(w)) {
    void *d[2] = {(void *)text, &hit};
    gtk_container_forall(GTK_CONTAINER(w), label_cb, d);
  }
  return hit;
}

static int view_index(const char *name)
{
  static const char *names[3] = {"axial", "coronal", "sagittal"};
  for (int p = 0; p < 3; p++)
    if (strcmp(name, names[p]) == 0)
      return p;
  return -1;
}

/* Sends a synthetic pointer event to a view's GL area, at fractions of its size. */
static void send_pointer(viewer *v, int p, GdkEventType type, double fx, double fy, guint button, guint state)
{
  GtkWidget *w = t3d_slice_view_widget(v->views[p]);
  GdkEvent *ev = gdk_event_new(type);
  double x = fx * gtk_widget_get_allocated_width(w), y = fy * gtk_widget_get_allocated_height(w);
  GdkWindow *win = gtk_widget_get_window(w);
  GdkDevice *pointer = gdk_seat_get_pointer(gdk_display_get_default_seat(gdk_display_get_default()));
  if (type == GDK_MOTION_NOTIFY) {
    ev->motion.window = g_object_ref(win);
    ev->motion.x = x;
    ev->motion.y = y;
    ev->motion.state = state;
  } else if (type == GDK_SCROLL) {
    ev->scroll.window = g_object_ref(win);
    ev->scroll.x = x;
    ev->scroll.y = y;
    ev->scroll.direction = button ? GDK_SCROLL_DOWN : GDK_SCROLL_UP;
  } else {
    ev->button.window = g_object_ref(win);
    ev->button.x = x;
    ev->button.y = y;
    ev->button.button = button;
    ev->button.state = state;
  }
  gdk_event_set_device(ev, pointer);
  gtk_widget_event(w, ev);
  gdk_event_free(ev);
}

static unsigned min_frames(viewer *v)
{
  unsigned m = t3d_slice_view_frames(v->views[0]);
  for (int p = 1; p < 3; p++)
    m = MIN(m, t3d_slice_view_frames(v->views[p]));
  return m;
}

static void queue_all(viewer *v)
{
  for (int p = 0; p < 3; p++)
    gtk_gl_area_queue_render(GTK_GL_AREA(t3d_slice_view_widget(v->views[p])));
}

static void start_wait(viewer_script *s, wait_kind kind, const char *arg, double seconds)
{
  s->wait = kind;
  g_free(s->wait_arg);
  s->wait_arg = g_strdup(arg);
  s->deadline = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
}

/* TRUE when the current wait is over. */
static gboolean wait_done(viewer_script *s)
{
  viewer *v = s->v;
  switch (s->wait) {
  case WAIT_NONE: return TRUE;
  case WAIT_SLEEP: return g_get_monotonic_time() >= s->deadline;
  case WAIT_SERIES: return v->volume && !v->loading && min_frames(v) >= 1;
  case WAIT_FRAMES: {
    gboolean all = TRUE;
    for (int p = 0; p < 3; p++)
      all &= t3d_slice_view_frames(v->views[p]) >= s->frame_target[p];
    if (!all)
      queue_all(v);
    return all;
  }
  case WAIT_SENSITIVE: {
    GtkWidget *w = find_widget(v, s->wait_arg);
    return w && gtk_widget_is_sensitive(w);
  }
  case WAIT_STATUS: return strstr(viewer_status_text(v), s->wait_arg) != NULL;
  case WAIT_OVERLAY: return viewer_overlay_shown(v);
  case WAIT_INFOBAR: return label_contains(v->infobars, s->wait_arg);
  }
  return TRUE;
}

static double arg_seconds(char **argv, int i, double fallback)
{
  return argv[i] ? g_ascii_strtod(argv[i], NULL) : fallback;
}

static void wait_frames(viewer_script *s, unsigned n)
{
  for (int p = 0; p < 3; p++)
    s->frame_target[p] = t3d_slice_view_frames(s->v->views[p]) + n;
  queue_all(s->v);
  start_wait(s, WAIT_FRAMES, NULL, 30);
}

/* Runs one command; FALSE when the script failed or ended. */
static gboolean run_command(viewer_script *s, char **argv)
{
  viewer *v = s->v;
  const char *cmd = argv[0];
  int argc = (int)g_strv_length(argv);
  if (strcmp(cmd, "wait-series") == 0) {
    start_wait(s, WAIT_SERIES, NULL, arg_seconds(argv, 1, 60));
  } else if (strcmp(cmd, "frames") == 0 && argc == 2) {
    wait_frames(s, (unsigned)atoi(argv[1]));
  } else if (strcmp(cmd, "sleep") == 0 && argc == 2) {
    start_wait(s, WAIT_SLEEP, NULL, atof(argv[1]) / 1000);
  } else if (strcmp(cmd, "click") == 0 && argc == 2) {
    GtkWidget *w = find_widget(v, argv[1]);
    if (!w) {
      fail(s, "no widget named %s", argv[1]);
      return FALSE;
    }
    if (!gtk_widget_is_sensitive(w)) {
      fail(s, "widget %s is insensitive", argv[1]);
      return FALSE;
    }
    if (GTK_IS_MENU_ITEM(w))
      gtk_menu_item_activate(GTK_MENU_ITEM(w));
    else if (GTK_IS_BUTTON(w))
      gtk_button_clicked(GTK_BUTTON(w));
    else
      gtk_widget_activate(w);
  } else if (strcmp(cmd, "wait-sensitive") == 0 && argc >= 2) {
    start_wait(s, WAIT_SENSITIVE, argv[1], arg_seconds(argv, 2, 30));
  } else if (strcmp(cmd, "set") == 0 && argc >= 3) {
    GtkWidget *w = find_widget(v, argv[1]);
    char *value = g_strjoinv(" ", argv + 2);
    if (!w) {
      g_free(value);
      fail(s, "no widget named %s", argv[1]);
      return FALSE;
    }
    if (GTK_IS_ENTRY(w))
      gtk_entry_set_text(GTK_ENTRY(w), value);
    else if (GTK_IS_RANGE(w))
      gtk_range_set_value(GTK_RANGE(w), g_ascii_strtod(value, NULL));
    else if (GTK_IS_SPIN_BUTTON(w))
      gtk_spin_button_set_value(GTK_SPIN_BUTTON(w), g_ascii_strtod(value, NULL));
    else if (GTK_IS_TOGGLE_BUTTON(w))
      gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(w), atoi(value) != 0);
    else if (GTK_IS_SWITCH(w))
      gtk_switch_set_active(GTK_SWITCH(w), atoi(value) != 0);
    else if (GTK_IS_COMBO_BOX(w))
      gtk_combo_box_set_active_id(GTK_COMBO_BOX(w), value);
    else if (GTK_IS_TEXT_VIEW(w))
      gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(w)), value, -1);
    else {
      g_free(value);
      fail(s, "widget %s (%s) takes no value", argv[1], G_OBJECT_TYPE_NAME(w));
      return FALSE;
    }
    g_free(value);
  } else if (strcmp(cmd, "key") == 0 && argc == 2) {
    guint key = 0;
    GdkModifierType mods = 0;
    gtk_accelerator_parse(argv[1], &key, &mods);
    if (!key) {
      fail(s, "accelerator %s not understood", argv[1]);
      return FALSE;
    }
    GdkEvent *ev = gdk_event_new(GDK_KEY_PRESS);
    ev->key.window = g_object_ref(gtk_widget_get_window(v->window));
    ev->key.send_event = TRUE;
    ev->key.time = GDK_CURRENT_TIME;
    ev->key.keyval = key;
    ev->key.state = mods;
    GdkKeymapKey *keys = NULL;
    gint n = 0;
    if (gdk_keymap_get_entries_for_keyval(gdk_keymap_get_for_display(gdk_display_get_default()), key, &keys, &n) && n > 0)
      ev->key.hardware_keycode = (guint16)keys[0].keycode;
    g_free(keys);
    gdk_event_set_device(ev, gdk_seat_get_keyboard(gdk_display_get_default_seat(gdk_display_get_default())));
    gboolean handled = gtk_window_activate_key(GTK_WINDOW(v->window), &ev->key);
    gdk_event_free(ev);
    if (!handled) {
      fail(s, "accelerator %s did nothing", argv[1]);
      return FALSE;
    }
  } else if (strcmp(cmd, "preset") == 0 && argc == 2) {
    if (!viewer_apply_preset(v, argv[1])) {
      fail(s, "unknown preset %s", argv[1]);
      return FALSE;
    }
  } else if (strcmp(cmd, "window") == 0 && argc == 3) {
    viewer_set_window(v, g_ascii_strtod(argv[1], NULL), g_ascii_strtod(argv[2], NULL));
  } else if (strcmp(cmd, "crosshair") == 0 && argc == 4) {
    int64_t vox[3] = {g_ascii_strtoll(argv[1], NULL, 10), g_ascii_strtoll(argv[2], NULL, 10),
                      g_ascii_strtoll(argv[3], NULL, 10)};
    viewer_set_crosshair(v, vox);
  } else if (strcmp(cmd, "zoom") == 0 && argc == 2) {
    for (int p = 0; p < 3; p++)
      t3d_slice_view_set_zoom(v->views[p], g_ascii_strtod(argv[1], NULL));
  } else if (strcmp(cmd, "fit") == 0 && argc == 1) {
    for (int p = 0; p < 3; p++)
      t3d_slice_view_fit(v->views[p]);
  } else if ((strcmp(cmd, "pointer") == 0 || strcmp(cmd, "click-view") == 0) && argc == 4) {
    int p = view_index(argv[1]);
    if (p < 0) {
      fail(s, "unknown view %s", argv[1]);
      return FALSE;
    }
    double fx = g_ascii_strtod(argv[2], NULL), fy = g_ascii_strtod(argv[3], NULL);
    send_pointer(v, p, GDK_MOTION_NOTIFY, fx, fy, 0, 0);
    if (strcmp(cmd, "click-view") == 0) {
      send_pointer(v, p, GDK_BUTTON_PRESS, fx, fy, 1, 0);
      send_pointer(v, p, GDK_BUTTON_RELEASE, fx, fy, 1, GDK_BUTTON1_MASK);
    }
  } else if (strcmp(cmd, "drag-view") == 0 && argc == 7) {
    int p = view_index(argv[1]);
    guint button = (guint)atoi(argv[2]);
    if (p < 0 || button < 1 || button > 3) {
      fail(s, "drag-view: unknown view %s or button %s", argv[1], argv[2]);
      return FALSE;
    }
    double x0 = g_ascii_strtod(argv[3], NULL), y0 = g_ascii_strtod(argv[4], NULL);
    double x1 = g_ascii_strtod(argv[5], NULL), y1 = g_ascii_strtod(argv[6], NULL);
    guint mask = button == 1 ? GDK_BUTTON1_MASK : button == 2 ? GDK_BUTTON2_MASK : GDK_BUTTON3_MASK;
    send_pointer(v, p, GDK_BUTTON_PRESS, x0, y0, button, 0);
    for (int step = 1; step <= 8; step++)
      send_pointer(v, p, GDK_MOTION_NOTIFY, x0 + (x1 - x0) * step / 8, y0 + (y1 - y0) * step / 8, 0, mask);
    send_pointer(v, p, GDK_BUTTON_RELEASE, x1, y1, button, mask);
  } else if (strcmp(cmd, "scroll") == 0 && argc == 3) {
    int p = view_index(argv[1]);
    if (p < 0) {
      fail(s, "unknown view %s", argv[1]);
      return FALSE;
    }
    int n = atoi(argv[2]);
    for (int i = 0; i < abs(n); i++)
      send_pointer(v, p, GDK_SCROLL, 0.5, 0.5, n > 0, 0);
  } else if (strcmp(cmd, "screenshot") == 0 && argc == 3) {
    char *dir = g_path_get_dirname(argv[2]);
    g_mkdir_with_parents(dir, 0755);
    g_free(dir);
    if (strcmp(argv[1], "window") == 0) {
      GError *err = NULL;
      if (!viewer_screenshot_window(v, argv[2], &err)) {
        fail(s, "screenshot %s: %s", argv[2], err ? err->message : "?");
        g_clear_error(&err);
        return FALSE;
      }
      return TRUE;
    }
    int p = view_index(argv[1]);
    if (p >= 0) {
      t3d_slice_view_request_screenshot(v->views[p], argv[2]);
      wait_frames(s, 1);
      return TRUE;
    }
    fail(s, "unknown view %s", argv[1]);
    return FALSE;
  } else if (strcmp(cmd, "select-series") == 0 && argc == 2) {
    if (!viewer_select_series(v, (guint)atoi(argv[1]))) {
      fail(s, "no series %s in the browser", argv[1]);
      return FALSE;
    }
  } else if (strcmp(cmd, "wait-status") == 0 && argc >= 2) {
    start_wait(s, WAIT_STATUS, argv[1], arg_seconds(argv, 2, 60));
  } else if (strcmp(cmd, "wait-overlay") == 0) {
    start_wait(s, WAIT_OVERLAY, NULL, arg_seconds(argv, 1, 120));
  } else if (strcmp(cmd, "wait-infobar") == 0 && argc >= 2) {
    start_wait(s, WAIT_INFOBAR, argv[1], arg_seconds(argv, 2, 30));
  } else if (strcmp(cmd, "expect-plugins") == 0 && argc == 2) {
    guint n = v->plugins ? t3d_plugins_count(v->plugins) : 0;
    if (n != (guint)atoi(argv[1])) {
      fail(s, "expected %s plugins, %u loaded", argv[1], n);
      return FALSE;
    }
  } else if (strcmp(cmd, "print") == 0 && argc == 2) {
    if (strcmp(argv[1], "status") == 0) {
      printf("status: %s\n", viewer_status_text(v));
    } else if (strcmp(argv[1], "plugins") == 0) {
      for (guint i = 0; v->plugins && i < t3d_plugins_count(v->plugins); i++)
        printf("plugin: %s\n", t3d_plugins_describe(v->plugins, i));
    } else if (strcmp(argv[1], "position") == 0) {
      printf("crosshair: %lld %lld %lld\n", (long long)v->cross[0], (long long)v->cross[1], (long long)v->cross[2]);
    } else if (strcmp(argv[1], "browser") == 0) {
      for (guint i = 0; i < viewer_series_count(v); i++) {
        gboolean thumb = FALSE;
        const char *uid = viewer_series_uid(v, i, &thumb);
        GtkListBoxRow *sel = gtk_list_box_get_selected_row(GTK_LIST_BOX(v->browser));
        printf("browser: %u %s %s%s\n", i, uid, thumb ? "thumbnail" : "no-thumbnail",
               sel && gtk_list_box_row_get_index(sel) == (int)i ? " selected" : "");
      }
    } else if (strcmp(argv[1], "readout") == 0) {
      printf("readout: %s\n", gtk_label_get_text(GTK_LABEL(v->readout)));
    } else if (strcmp(argv[1], "window") == 0) {
      printf("window: %.1f %.1f\n", v->wl_center, v->wl_width);
    } else if (strcmp(argv[1], "series") == 0 && v->volume) {
      printf("series: %s %s %lldx%lldx%lld spacing %.4g %.4g %.4g\n", v->volume->meta.series_uid,
             v->volume->meta.modality, (long long)v->volume->nx, (long long)v->volume->ny, (long long)v->volume->nz,
             v->volume->spacing[0], v->volume->spacing[1], v->volume->spacing[2]);
      printf("renderer: %s\n", t3d_slice_view_renderer(v->views[0]));
    }
    fflush(stdout);
  } else if (strcmp(cmd, "quit") == 0) {
    for (int p = 0; p < 3; p++)
      if (*t3d_slice_view_error(v->views[p])) {
        fail(s, "view %d: %s", p, t3d_slice_view_error(v->views[p]));
        return FALSE;
      }
    s->source = 0;
    viewer_quit(v, argc > 1 ? atoi(argv[1]) : 0);
    return FALSE;
  } else {
    fail(s, "unknown or malformed command: %s", cmd);
    return FALSE;
  }
  return TRUE;
}

static gboolean tick(gpointer data)
{
  viewer_script *s = data;
  if (s->wait != WAIT_NONE) {
    if (!wait_done(s)) {
      if (g_get_monotonic_time() > s->deadline) {
        fail(s, "timed out waiting (%s)", s->wait_arg ? s->wait_arg : "");
        return G_SOURCE_REMOVE;
      }
      return G_SOURCE_CONTINUE;
    }
    s->wait = WAIT_NONE;
  }
  while (s->lines[s->pc]) {
    char *line = g_strstrip(g_strdup(s->lines[s->pc]));
    s->pc++;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    g_strstrip(line);
    if (!*line) {
      g_free(line);
      continue;
    }
    char **argv = NULL;
    GError *err = NULL;
    if (!g_shell_parse_argv(line, NULL, &argv, &err)) {
      fail(s, "%s", err->message);
      g_error_free(err);
      g_free(line);
      return G_SOURCE_REMOVE;
    }
    g_free(line);
    gboolean go_on = run_command(s, argv);
    g_strfreev(argv);
    if (!go_on)
      return G_SOURCE_REMOVE;
    if (!s->v->window) { /* the command closed the viewer (Ctrl+Q, a menu item) */
      s->source = 0;
      return G_SOURCE_REMOVE;
    }
    if (s->wait != WAIT_NONE)
      return G_SOURCE_CONTINUE;
  }
  s->source = 0;
  return G_SOURCE_REMOVE; /* the script ended without quit: the viewer stays open */
}

void viewer_script_start(viewer_script *s)
{
  s->source = g_timeout_add(20, tick, s);
}
