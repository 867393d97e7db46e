/* Logging threshold, sink and formatting. Thread-safe: one formatted line per call,
 * written with a single fputs so lines from worker threads do not interleave. */
#include "core/base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t level_once = PTHREAD_ONCE_INIT;
static _Atomic int log_level = T3D_LOG_WARN;
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static t3d_log_sink log_sink;
static void *log_sink_user;

int t3d_log_parse_level(const char *name, t3d_log_level *out)
{
  static const struct { const char *name; t3d_log_level level; } names[] = {
    {"debug", T3D_LOG_DEBUG}, {"info", T3D_LOG_INFO}, {"warn", T3D_LOG_WARN},
    {"warning", T3D_LOG_WARN}, {"error", T3D_LOG_ERROR}, {"silent", T3D_LOG_SILENT},
  };
  for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++) {
    if (strcasecmp(name, names[i].name) == 0) {
      *out = names[i].level;
      return 0;
    }
  }
  return -1;
}

static void read_env_level(void)
{
  const char *env = getenv("T3D_LOG");
  t3d_log_level level;
  if (env && *env) {
    if (t3d_log_parse_level(env, &level) == 0)
      log_level = level;
    else
      fprintf(stderr, "t3d: warning: T3D_LOG=%s is not one of debug, info, warn, error; using warn\n", env);
  }
}

t3d_log_level t3d_log_get_level(void)
{
  pthread_once(&level_once, read_env_level);
  return (t3d_log_level)log_level;
}

void t3d_log_set_level(t3d_log_level level)
{
  pthread_once(&level_once, read_env_level);
  log_level = level;
}

void t3d_log_set_sink(t3d_log_sink sink, void *user)
{
  pthread_mutex_lock(&sink_lock);
  log_sink = sink;
  log_sink_user = user;
  pthread_mutex_unlock(&sink_lock);
}

void t3d_log(t3d_log_level level, const char *fmt, ...)
{
  static const char *const tags[] = {"debug", "info", "warning", "error"};
  char msg[2048];
  char line[2100];
  va_list ap;

  if (level < t3d_log_get_level() || level >= T3D_LOG_SILENT)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  pthread_mutex_lock(&sink_lock);
  if (log_sink) {
    log_sink(level, msg, log_sink_user);
  } else {
    snprintf(line, sizeof line, "t3d: %s: %s\n", tags[level], msg);
    fputs(line, stderr);
  }
  pthread_mutex_unlock(&sink_lock);
}
