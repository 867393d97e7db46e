/* SHA-256 (FIPS 180-4) of a byte buffer or a file, as lowercase hex: names a model file by its
 * content in reports and the index. Not a general crypto API: no HMAC, no other digests. */
#ifndef T3D_SHA256_H
#define T3D_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define T3D_SHA256_HEX 65 /* 64 hex digits + NUL */

typedef struct {
  uint32_t h[8];
  uint64_t nbytes;
  uint8_t block[64];
  size_t fill;
} t3d_sha256_ctx;

void t3d_sha256_init(t3d_sha256_ctx *c);
void t3d_sha256_update(t3d_sha256_ctx *c, const void *data, size_t n);
void t3d_sha256_final(t3d_sha256_ctx *c, uint8_t digest[32]);
/* Digest of data[n] as hex into hex[T3D_SHA256_HEX]. */
void t3d_sha256_hex(const void *data, size_t n, char hex[T3D_SHA256_HEX]);
/* Digest of the file at path; T3D_ERR_IO naming it when it cannot be read. */
t3d_status t3d_sha256_file(const char *path, char hex[T3D_SHA256_HEX]);

#ifdef __cplusplus
}
#endif
#endif
