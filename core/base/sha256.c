/* SHA-256 per FIPS 180-4: 64-byte blocks, big-endian words, 64 rounds. Written for clarity,
 * not speed (a model file of 200 MB hashes in about a second). */
#include "core/base/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void compress(uint32_t h[8], const uint8_t b[64])
{
  uint32_t w[64], a[8];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t)b[4 * t] << 24 | (uint32_t)b[4 * t + 1] << 16 | (uint32_t)b[4 * t + 2] << 8 | b[4 * t + 3];
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  memcpy(a, h, sizeof a);
  for (int t = 0; t < 64; t++) {
    uint32_t S1 = rotr(a[4], 6) ^ rotr(a[4], 11) ^ rotr(a[4], 25);
    uint32_t ch = (a[4] & a[5]) ^ (~a[4] & a[6]);
    uint32_t t1 = a[7] + S1 + ch + K[t] + w[t];
    uint32_t S0 = rotr(a[0], 2) ^ rotr(a[0], 13) ^ rotr(a[0], 22);
    uint32_t maj = (a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]);
    memmove(a + 1, a, 7 * sizeof a[0]);
    a[4] += t1;
    a[0] = t1 + S0 + maj;
  }
  for (int i = 0; i < 8; i++) h[i] += a[i];
}

void t3d_sha256_init(t3d_sha256_ctx *c)
{
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, h0, sizeof h0);
  c->nbytes = 0;
  c->fill = 0;
}

void t3d_sha256_update(t3d_sha256_ctx *c, const void *data, size_t n)
{
  const uint8_t *p = data;
  c->nbytes += n;
  while (n > 0) {
    size_t take = 64 - c->fill < n ? 64 - c->fill : n;
    memcpy(c->block + c->fill, p, take);
    c->fill += take;
    p += take;
    n -= take;
    if (c->fill == 64) {
      compress(c->h, c->block);
      c->fill = 0;
    }
  }
}

void t3d_sha256_final(t3d_sha256_ctx *c, uint8_t digest[32])
{
  uint64_t bits = c->nbytes * 8;
  uint8_t pad[72] = {0x80};
  size_t padlen = (c->fill < 56 ? 56 : 120) - c->fill;
  for (int i = 0; i < 8; i++) pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
  t3d_sha256_update(c, pad, padlen + 8);
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 4; j++) digest[4 * i + j] = (uint8_t)(c->h[i] >> (24 - 8 * j));
}

static void to_hex(const uint8_t d[32], char hex[T3D_SHA256_HEX])
{
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  hex[64] = '\0';
}

void t3d_sha256_hex(const void *data, size_t n, char hex[T3D_SHA256_HEX])
{
  t3d_sha256_ctx c;
  uint8_t d[32];
  t3d_sha256_init(&c);
  t3d_sha256_update(&c, data, n);
  t3d_sha256_final(&c, d);
  to_hex(d, hex);
}

t3d_status t3d_sha256_file(const char *path, char hex[T3D_SHA256_HEX])
{
  t3d_sha256_ctx c;
  uint8_t d[32], buf[1 << 16];
  size_t got;
  FILE *f = fopen(path, "rb");
  if (!f) return t3d_error(T3D_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  t3d_sha256_init(&c);
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) t3d_sha256_update(&c, buf, got);
  int bad = ferror(f);
  fclose(f);
  if (bad) return t3d_error(T3D_ERR_IO, "%s: read error", path);
  t3d_sha256_final(&c, d);
  to_hex(d, hex);
  return T3D_OK;
}
