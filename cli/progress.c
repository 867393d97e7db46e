/* The `t3d` progress bar with ETA on stderr (progress.h). Not thread-safe: one bar, drawn from
 * the thread that runs the work. */
#include "config.h"

#include "cli/progress.h"

#include <libintl.h>
#include <stdio.h>
#include <time.h>

#define _(s) gettext(s)

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_duration(char *buf, size_t size, double s)
{
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, size, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
  else
    snprintf(buf, size, "%lds", t);
}

void t3d_cli_progress_start(t3d_cli_progress *p)
{
  p->start = now_s();
  p->last_draw = 0;
  p->drawn = p->done = 0;
}

void t3d_cli_progress_draw(t3d_cli_progress *p, double fraction, const char *label)
{
  enum { WIDTH = 24 };
  double t = now_s(), elapsed = t - p->start;
  if (p->done) return;
  if (fraction < 0) fraction = 0;
  if (fraction >= 1) fraction = 1;
  else if (p->drawn && t - p->last_draw < 0.1) return;
  p->last_draw = t;
  p->drawn = 1;
  char bar[WIDTH + 1], when[32], eta[48];
  int filled = (int)(fraction * WIDTH);
  for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '-';
  bar[WIDTH] = '\0';
  if (fraction >= 1) {
    format_duration(when, sizeof when, elapsed);
    snprintf(eta, sizeof eta, _("done in %s"), when);
  } else if (fraction > 0.001 && elapsed > 0.5) {
    format_duration(when, sizeof when, elapsed / fraction * (1 - fraction));
    snprintf(eta, sizeof eta, _("ETA %s"), when);
  } else {
    snprintf(eta, sizeof eta, _("ETA ?"));
  }
  fprintf(stderr, "\r[%s] %3.0f%%  %-40.40s  %-14s", bar, fraction * 100, label ? label : "", eta);
  if (fraction >= 1) {
    fputc('\n', stderr);
    p->done = 1;
  }
  fflush(stderr);
}

void t3d_cli_progress_end(t3d_cli_progress *p)
{
  if (p->done || !p->drawn) return;
  fputc('\n', stderr);
  p->done = 1;
}
