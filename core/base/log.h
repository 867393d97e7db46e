/* Levelled logging to stderr (or a host-supplied sink), level from T3D_LOG=debug|info|warn|error.
 * Not for errors a caller must handle: those are status codes (status.h). */
#ifndef T3D_LOG_H
#define T3D_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { T3D_LOG_DEBUG = 0, T3D_LOG_INFO, T3D_LOG_WARN, T3D_LOG_ERROR, T3D_LOG_SILENT } t3d_log_level;

typedef void (*t3d_log_sink)(t3d_log_level level, const char *msg, void *user);

/* Current threshold; first call reads T3D_LOG (default: warn). */
t3d_log_level t3d_log_get_level(void);
void t3d_log_set_level(t3d_log_level level);
/* Parses "debug", "info", "warn"/"warning", "error", "silent"; returns 0 on success. */
int t3d_log_parse_level(const char *name, t3d_log_level *out);
/* Routes messages to sink (NULL restores stderr). The plugin uses this to reach the host's log. */
void t3d_log_set_sink(t3d_log_sink sink, void *user);

void t3d_log(t3d_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define T3D_DEBUG(...) t3d_log(T3D_LOG_DEBUG, __VA_ARGS__)
#define T3D_INFO(...) t3d_log(T3D_LOG_INFO, __VA_ARGS__)
#define T3D_WARN(...) t3d_log(T3D_LOG_WARN, __VA_ARGS__)
#define T3D_ERROR(...) t3d_log(T3D_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
