/* The worker process (see worker.h): GSubprocess with both pipes read asynchronously on the
 * main loop, reference-counted so that freeing it while reads are pending is safe.
 * Not a job queue: one worker runs one command once. */
#include "config.h"

#include "plugin/worker.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <jansson.h>

#ifndef T3D_BINDIR
#define T3D_BINDIR "/usr/local/bin"
#endif

#define STDERR_KEEP 4096 /* bytes of non-progress stderr kept for the message */

struct t3d_worker {
  gint refs;          /* the owner's reference + one per pending async operation or timer */
  gboolean detached;  /* the owner freed it: no callbacks any more */
  gboolean finished;  /* done has been called (or would have been, when detached) */
  gboolean cancel_requested;
  int pending;        /* of stdout EOF, stderr EOF, process exit */
  GSubprocess *proc;
  GCancellable *cancellable;
  GInputStream *out_in;
  GDataInputStream *err_in;
  GByteArray *out_buf;
  GString *err_text;
  guint kill_timer;
  gint64 t0_us;
  double first_progress_ms;
  t3d_worker_progress_fn progress;
  t3d_worker_done_fn done;
  void *user;
};

const char *t3d_worker_engine_path(void)
{
  const char *e = g_getenv("T3D_ENGINE");
  return e && *e ? e : T3D_BINDIR "/t3d";
}

static t3d_worker *worker_ref(t3d_worker *w)
{
  w->refs++;
  return w;
}

static void worker_unref(t3d_worker *w)
{
  if (--w->refs > 0) return; /* a pending timer holds a reference, so none is left here */
  g_clear_object(&w->out_in);
  g_clear_object(&w->err_in);
  g_clear_object(&w->proc);
  g_clear_object(&w->cancellable);
  if (w->out_buf) g_byte_array_unref(w->out_buf);
  if (w->err_text) g_string_free(w->err_text, TRUE);
  g_free(w);
}

/* Async-signal-safe: runs in the child between fork and exec. */
static void child_setup(gpointer data)
{
  (void)data;
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = write(fd, "1000", 4);
    (void)n;
    close(fd);
  }
}

static void finish(t3d_worker *w)
{
  w->finished = TRUE;
  if (w->kill_timer) {
    g_source_remove(w->kill_timer);
    w->kill_timer = 0;
  }
  if (w->detached) return;

  t3d_worker_result r;
  memset(&r, 0, sizeof r);
  r.exit_status = -1;
  r.wall_ms = (double)(g_get_monotonic_time() - w->t0_us) / 1000.0;
  r.first_progress_ms = w->first_progress_ms;
  g_byte_array_append(w->out_buf, (const guint8 *)"", 1); /* NUL-terminate */
  r.out = (const char *)w->out_buf->data;
  r.out_len = w->out_buf->len - 1;
  g_strchomp(w->err_text->str);
  w->err_text->len = strlen(w->err_text->str);
  char *msg = NULL;

  if (g_subprocess_get_if_signaled(w->proc)) {
    r.term_signal = g_subprocess_get_term_sig(w->proc);
    if (w->cancel_requested) {
      r.outcome = T3D_WORKER_CANCELLED;
      msg = g_strdup(_("The analysis was cancelled."));
    } else {
      r.outcome = T3D_WORKER_CRASHED;
      msg = g_strdup_printf(_("The analysis process stopped unexpectedly (signal %d, %s); the viewer is not "
                              "affected. %s"),
                            r.term_signal, g_strsignal(r.term_signal),
                            r.term_signal == SIGKILL ? _("It may have run out of memory.") : "");
      g_strchomp(msg);
    }
  } else {
    r.exit_status = g_subprocess_get_exit_status(w->proc);
    if (w->cancel_requested) {
      r.outcome = T3D_WORKER_CANCELLED;
      msg = g_strdup(_("The analysis was cancelled."));
    } else if (r.exit_status == 0) {
      r.outcome = T3D_WORKER_OK;
      msg = g_strdup("");
    } else {
      r.outcome = T3D_WORKER_FAILED;
      msg = w->err_text->len ? g_strdup(w->err_text->str)
                             : g_strdup_printf(_("The analysis process exited with status %d."), r.exit_status);
    }
  }
  r.message = msg;
  w->done(w->user, &r);
  g_free(msg);
}

static void pending_done(t3d_worker *w)
{
  if (--w->pending == 0) finish(w);
}

static void read_stdout(t3d_worker *w);
static void read_stderr(t3d_worker *w);

static void on_stdout(GObject *src, GAsyncResult *res, gpointer data)
{
  t3d_worker *w = data;
  GBytes *b = g_input_stream_read_bytes_finish(G_INPUT_STREAM(src), res, NULL);
  gsize n = b ? g_bytes_get_size(b) : 0;
  if (n > 0 && !w->detached) {
    g_byte_array_append(w->out_buf, g_bytes_get_data(b, NULL), (guint)n);
    read_stdout(w);
  } else {
    pending_done(w);
  }
  if (b) g_bytes_unref(b);
  worker_unref(w);
}

static void read_stdout(t3d_worker *w)
{
  g_input_stream_read_bytes_async(w->out_in, 65536, G_PRIORITY_DEFAULT, w->cancellable, on_stdout, worker_ref(w));
}

/* A progress line is {"progress": number, "stage": string}; returns FALSE for anything else. */
static gboolean parse_progress(const char *line, double *fraction, char **stage)
{
  if (line[0] != '{') return FALSE;
  json_t *j = json_loads(line, 0, NULL);
  json_t *p = json_object_get(j, "progress"), *s = json_object_get(j, "stage");
  gboolean ok = json_is_number(p) && (!s || json_is_string(s));
  if (ok) {
    *fraction = CLAMP(json_number_value(p), 0.0, 1.0);
    *stage = g_strdup(s ? json_string_value(s) : "");
  }
  json_decref(j);
  return ok;
}

static void on_stderr_line(GObject *src, GAsyncResult *res, gpointer data)
{
  t3d_worker *w = data;
  gsize len = 0;
  char *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, &len, NULL);
  if (line && !w->detached) {
    double f;
    char *stage = NULL;
    if (parse_progress(line, &f, &stage)) {
      if (w->first_progress_ms < 0) w->first_progress_ms = (double)(g_get_monotonic_time() - w->t0_us) / 1000.0;
      if (w->progress && !w->cancel_requested) w->progress(w->user, f, stage);
      g_free(stage);
    } else if (g_utf8_validate(line, (gssize)len, NULL)) {
      g_string_append(w->err_text, line);
      g_string_append_c(w->err_text, '\n');
      if (w->err_text->len > STDERR_KEEP) g_string_erase(w->err_text, 0, (gssize)(w->err_text->len - STDERR_KEEP));
    }
    read_stderr(w);
  } else {
    pending_done(w);
  }
  g_free(line);
  worker_unref(w);
}

static void read_stderr(t3d_worker *w)
{
  g_data_input_stream_read_line_async(w->err_in, G_PRIORITY_DEFAULT, w->cancellable, on_stderr_line, worker_ref(w));
}

static void on_child_exit(GObject *src, GAsyncResult *res, gpointer data)
{
  t3d_worker *w = data;
  g_subprocess_wait_finish(G_SUBPROCESS(src), res, NULL);
  pending_done(w);
  worker_unref(w);
}

t3d_worker *t3d_worker_start(const char *const *argv, const char *const *env_extra, t3d_worker_progress_fn progress,
                             t3d_worker_done_fn done, void *user, GError **error)
{
  g_return_val_if_fail(argv && argv[0] && done, NULL);
  GSubprocessLauncher *l =
    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE); /* stdin: /dev/null */
  for (const char *const *e = env_extra; e && *e; e++) {
    char **kv = g_strsplit(*e, "=", 2);
    if (kv[0] && kv[1]) g_subprocess_launcher_setenv(l, kv[0], kv[1], TRUE);
    g_strfreev(kv);
  }
  g_subprocess_launcher_set_child_setup(l, child_setup, NULL, NULL);
  gint64 t0 = g_get_monotonic_time();
  GSubprocess *p = g_subprocess_launcher_spawnv(l, argv, error);
  g_object_unref(l);
  if (!p) return NULL;

  t3d_worker *w = g_new0(t3d_worker, 1);
  w->refs = 1;
  w->proc = p;
  w->t0_us = t0;
  w->first_progress_ms = -1;
  w->cancellable = g_cancellable_new();
  w->out_in = g_object_ref(g_subprocess_get_stdout_pipe(p));
  w->err_in = g_data_input_stream_new(g_subprocess_get_stderr_pipe(p));
  g_data_input_stream_set_newline_type(w->err_in, G_DATA_STREAM_NEWLINE_TYPE_ANY);
  w->out_buf = g_byte_array_new();
  w->err_text = g_string_new(NULL);
  w->progress = progress;
  w->done = done;
  w->user = user;
  w->pending = 3;
  read_stdout(w);
  read_stderr(w);
  g_subprocess_wait_async(p, w->cancellable, on_child_exit, worker_ref(w));
  return w;
}

static gboolean on_kill_timer(gpointer data)
{
  t3d_worker *w = data;
  w->kill_timer = 0;
  if (!w->finished) g_subprocess_force_exit(w->proc);
  return G_SOURCE_REMOVE;
}

void t3d_worker_cancel(t3d_worker *w, unsigned grace_ms)
{
  if (!w || w->finished || w->cancel_requested) return;
  w->cancel_requested = TRUE;
  g_subprocess_send_signal(w->proc, SIGTERM);
  w->kill_timer = g_timeout_add_full(G_PRIORITY_DEFAULT, grace_ms, on_kill_timer, worker_ref(w),
                                     (GDestroyNotify)worker_unref);
}

gboolean t3d_worker_running(const t3d_worker *w) { return w && !w->finished; }

void t3d_worker_free(t3d_worker *w)
{
  if (!w) return;
  w->detached = TRUE;
  if (!w->finished) g_subprocess_force_exit(w->proc);
  if (w->kill_timer) {
    g_source_remove(w->kill_timer); /* drops the timer's reference */
    w->kill_timer = 0;
  }
  g_cancellable_cancel(w->cancellable);
  worker_unref(w);
}
