/* Status strings and the thread-local detail message behind t3d_error().
 * Deliberately tiny: no allocation, so it works when memory has run out. */
#include "core/base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Marked for the message catalog but returned in English: callers that show them to a user
 * translate with gettext (cli/t3d.c), logs keep the English. */
#define N_(s) (s)

#define T3D_DETAIL_MAX 1024
static _Thread_local char detail_buf[T3D_DETAIL_MAX];

const char *t3d_strerror(t3d_status s)
{
  switch (s) {
  case T3D_OK: return N_("success");
  case T3D_ERR_INVALID_ARG: return N_("invalid argument");
  case T3D_ERR_NOMEM: return N_("out of memory");
  case T3D_ERR_IO: return N_("input/output error");
  case T3D_ERR_FORMAT: return N_("malformed input");
  case T3D_ERR_UNSUPPORTED: return N_("unsupported");
  case T3D_ERR_SHAPE: return N_("shape or type mismatch");
  case T3D_ERR_NOT_FOUND: return N_("not found");
  case T3D_ERR_CANCELLED: return N_("cancelled");
  case T3D_ERR_BACKEND: return N_("compute backend failure");
  case T3D_ERR_INTERNAL: return N_("internal error");
  case T3D_STATUS_COUNT: break;
  }
  return N_("unknown status");
}

t3d_status t3d_error(t3d_status s, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail_buf, sizeof detail_buf, fmt, ap);
  va_end(ap);
  return s;
}

void t3d_error_prefix(const char *fmt, ...)
{
  char prefix[T3D_DETAIL_MAX];
  size_t plen, olen;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  plen = strlen(prefix);
  olen = strlen(detail_buf);
  if (plen >= T3D_DETAIL_MAX - 1)
    plen = T3D_DETAIL_MAX - 1;
  if (plen + olen > T3D_DETAIL_MAX - 1)
    olen = T3D_DETAIL_MAX - 1 - plen; /* keep the prefix, truncate the old detail's tail */
  memmove(detail_buf + plen, detail_buf, olen);
  memcpy(detail_buf, prefix, plen);
  detail_buf[plen + olen] = '\0';
}

const char *t3d_error_detail(void) { return detail_buf; }

void t3d_error_clear(void) { detail_buf[0] = '\0'; }
