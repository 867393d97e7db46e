/* The progress bar the long-running `t3d` commands draw on stderr (analyze --progress, eval):
 * bar, percentage, a label and the estimated time left. Not a log: it redraws one line. */
#ifndef T3D_CLI_PROGRESS_H
#define T3D_CLI_PROGRESS_H

/* Zero-initialised: not started, nothing drawn (t3d_cli_progress_end is then a no-op). */
typedef struct {
  double start;     /* seconds, monotonic clock */
  double last_draw; /* seconds; redraws are throttled to 10 per second */
  int drawn;        /* something is on the line */
  int done;         /* the final line was drawn */
} t3d_cli_progress;

/* Starts the clock the ETA is computed from. */
void t3d_cli_progress_start(t3d_cli_progress *p);
/* Redraws "\r[#####-----]  42%  label  ETA 1m05s"; fraction 1 draws the final line with the
 * elapsed time and ends it with a newline. Safe to call often. */
void t3d_cli_progress_draw(t3d_cli_progress *p, double fraction, const char *label);
/* Ends an unfinished bar with a newline (before printing an error, say); no-op once done. */
void t3d_cli_progress_end(t3d_cli_progress *p);

#endif
