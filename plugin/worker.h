/* t3d_worker: runs one t3d engine command in a child process (GSubprocess) and streams what it
 * says back on the GLib main loop: JSON progress lines from its stderr, its whole stdout (the
 * JSON result) and, when it fails, the reason in words. A crash, a GPU driver fault or the
 * kernel's out-of-memory killer ends only the child; Cancel is SIGTERM, then SIGKILL.
 * Not analysis-specific (search and report commands run through it too) and not thread-safe:
 * create, cancel and free it on the thread whose main context runs its callbacks.
 *
 * Protocol (what `t3d analyze --progress-json` speaks):
 *   stderr: lines; a line that is a JSON object with a number "progress" (0..1) and a string
 *           "stage" is progress; every other line is kept as the failure message.
 *   stdout: the result, read to the end (any bytes; callers parse JSON).
 *   exit:   0 success; anything else failure (stderr says why); a signal is a crash unless
 *           we sent it (cancel). */
#ifndef T3D_PLUGIN_WORKER_H
#define T3D_PLUGIN_WORKER_H

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct t3d_worker t3d_worker;

typedef enum {
  T3D_WORKER_OK = 0,    /* exited 0 */
  T3D_WORKER_FAILED,    /* exited non-zero: message holds its stderr (not progress) */
  T3D_WORKER_CRASHED,   /* killed by a signal we did not send (segfault, OOM killer, ...) */
  T3D_WORKER_CANCELLED, /* t3d_worker_cancel was called before it ended */
} t3d_worker_outcome;

typedef struct {
  t3d_worker_outcome outcome;
  int exit_status;          /* when it exited; -1 when signalled */
  int term_signal;          /* when signalled; 0 otherwise */
  const char *out;          /* all of stdout, NUL-terminated; borrowed for the callback */
  gsize out_len;
  const char *message;      /* for a person: why it failed ("" when OK); borrowed */
  double wall_ms;           /* from start to exit */
  double first_progress_ms; /* from start to the first progress line; -1 when none came */
} t3d_worker_result;

typedef void (*t3d_worker_progress_fn)(void *user, double fraction, const char *stage);
typedef void (*t3d_worker_done_fn)(void *user, const t3d_worker_result *r);

/* Starts argv[0] (a path, or a name looked up in PATH) with argv. env_extra: NULL, or a
 * NULL-terminated list of "NAME=VALUE" set in the child's environment on top of ours.
 * Callbacks run from the thread-default main context; done is called exactly once, after the
 * child has exited and both pipes are drained, unless the worker is freed first.
 * The child is made the kernel's first choice when memory runs out (oom_score_adj 1000).
 * Returns NULL and sets *error when the program cannot be started. */
t3d_worker *t3d_worker_start(const char *const *argv, const char *const *env_extra, t3d_worker_progress_fn progress,
                             t3d_worker_done_fn done, void *user, GError **error);

/* Asks the child to stop (SIGTERM) and kills it (SIGKILL) when it is still there after
 * grace_ms. done then reports T3D_WORKER_CANCELLED. No-op once it has ended. */
void t3d_worker_cancel(t3d_worker *w, unsigned grace_ms);

/* TRUE from start until done has been called. */
gboolean t3d_worker_running(const t3d_worker *w);

/* Kills a running child at once (SIGKILL) and frees the worker; no callback runs afterwards.
 * NULL is a no-op. */
void t3d_worker_free(t3d_worker *w);

/* The t3d executable the plugin runs: $T3D_ENGINE when set, else the installed one.
 * Borrowed (static or environment storage). */
const char *t3d_worker_engine_path(void);

G_END_DECLS

#endif
