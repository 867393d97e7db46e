/* Status codes and per-thread error detail for every t3d library call.
 * Not a logging facility (see log.h) and never aborts: callers decide what to do. */
#ifndef T3D_STATUS_H
#define T3D_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  T3D_OK = 0,
  T3D_ERR_INVALID_ARG,  /* caller passed something unusable */
  T3D_ERR_NOMEM,        /* allocation failed or an arena is exhausted */
  T3D_ERR_IO,           /* open/read/write/mmap failed (errno in the detail) */
  T3D_ERR_FORMAT,       /* input bytes are malformed (model file, DICOM, JSON) */
  T3D_ERR_UNSUPPORTED,  /* valid input that t3d does not handle (dtype, syntax, op) */
  T3D_ERR_SHAPE,        /* tensor shapes or dtypes do not fit the operation */
  T3D_ERR_NOT_FOUND,    /* a named tensor, series, file or key is missing */
  T3D_ERR_CANCELLED,    /* the user cancelled long-running work */
  T3D_ERR_BACKEND,      /* the compute backend (CUDA, cuDNN, BLAS) reported a failure */
  T3D_ERR_INTERNAL,     /* a t3d bug; the detail says where */
  T3D_STATUS_COUNT
} t3d_status;

/* Short, static, untranslated description of a status code ("malformed input"). */
const char *t3d_strerror(t3d_status s);

/* Records a printf-style detail for the calling thread and returns s, so failures read
 *   return t3d_error(T3D_ERR_FORMAT, "%s: header length %llu beyond file size %zu", ...);
 * The detail is what a person reads to act on the failure. */
t3d_status t3d_error(t3d_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prefixes the current detail with more context ("model.safetensors: " + detail). */
void t3d_error_prefix(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Returns from the enclosing function with the status of expr when it is not T3D_OK (the
 * detail is already set). For functions that own nothing; those that do use goto cleanup. */
#define T3D_TRY(expr)                \
  do {                               \
    t3d_status t3d_try_s_ = (expr);  \
    if (t3d_try_s_ != T3D_OK)        \
      return t3d_try_s_;             \
  } while (0)

/* The calling thread's last detail; "" when none. Valid until the next t3d call. */
const char *t3d_error_detail(void);
void t3d_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
