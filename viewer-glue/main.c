/* `t3d-viewer`: start-up of the reference GTK 3 DICOM viewer -- locale and text domain (the
 * host owns the "t3d" domain; plugins only bind theirs), options, plugins, first folder, test
 * script. The window and its behaviour are in viewer.c. */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib/gi18n.h>

#include "viewer-glue/viewer.h"

typedef struct {
  char *path, *series_uid, *script_file, *locale_dir;
  viewer *v;
  int status;
} startup;

static void on_activate(GtkApplication *app, startup *st)
{
  if (st->v) {
    gtk_window_present(GTK_WINDOW(st->v->window));
    return;
  }
  st->v = viewer_new(app, st->locale_dir);
  viewer_load_plugins(st->v);
  if (st->path)
    viewer_open(st->v, st->path, st->series_uid);
  const char *script = st->script_file ? st->script_file : g_getenv("T3D_VIEWER_SCRIPT");
  if (script && *script) {
    char *text = NULL;
    GError *err = NULL;
    if (!g_file_get_contents(script, &text, NULL, &err)) {
      g_printerr("t3d-viewer: %s\n", err->message);
      g_error_free(err);
      viewer_quit(st->v, 2);
      return;
    }
    st->v->script = viewer_script_new(st->v, text, script);
    g_free(text);
    viewer_script_start(st->v->script);
  }
}

int main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  /* T3D_LOCALEDIR: catalogs outside the configured prefix (a relocated install, the tests). */
  const char *ld = getenv("T3D_LOCALEDIR");
  startup st = {0};
  st.locale_dir = g_strdup(ld && *ld ? ld : LOCALEDIR);
  bindtextdomain(GETTEXT_PACKAGE, st.locale_dir);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  textdomain(GETTEXT_PACKAGE);

  gboolean version = FALSE;
  GOptionEntry entries[] = {
    {"series", 's', 0, G_OPTION_ARG_STRING, &st.series_uid, N_("Series Instance UID to show first"), N_("UID")},
    {"test-script", 0, 0, G_OPTION_ARG_FILENAME, &st.script_file,
     N_("Run the commands in FILE (tests and demos; see docs/ARCHITECTURE.md)"), N_("FILE")},
    {"version", 0, 0, G_OPTION_ARG_NONE, &version, N_("Print the version and exit"), NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
  };
  GOptionContext *ctx = g_option_context_new(_("[FOLDER|DICOMDIR|FILE] — view a DICOM CT series"));
  g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
  g_option_context_add_group(ctx, gtk_get_option_group(FALSE));
  GError *err = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
    g_printerr("t3d-viewer: %s\n", err->message);
    g_error_free(err);
    g_option_context_free(ctx);
    return 2;
  }
  g_option_context_free(ctx);
  if (version) {
    printf("t3d-viewer %s\n", PACKAGE_VERSION);
    return 0;
  }
  if (argc > 2) {
    g_printerr(_("t3d-viewer: one folder, DICOMDIR or file at a time\n"));
    return 2;
  }
  if (argc == 2)
    st.path = g_strdup(argv[1]);

  if (!gtk_init_check(NULL, NULL)) {
    g_printerr(_("t3d-viewer: cannot open a display (is DISPLAY set?)\n"));
    return 3;
  }
  /* NON_UNIQUE: each start is its own viewer (tests run several at once). */
  GtkApplication *app = gtk_application_new("org.t3d.Viewer", G_APPLICATION_NON_UNIQUE);
  g_signal_connect(app, "activate", G_CALLBACK(on_activate), &st);
  char *run_argv[] = {argv[0], NULL};
  int rc = g_application_run(G_APPLICATION(app), 1, run_argv);
  int status = st.v ? st.v->exit_code : rc;
  viewer_free(st.v);
  g_object_unref(app);
  g_free(st.path);
  g_free(st.series_uid);
  g_free(st.script_file);
  g_free(st.locale_dir);
  return status;
}
