/* Parity of the C tokenizer with transformers' BertTokenizer: reads reference.json written by
 * tests/reference/tokenizer_reference.py (run by tests/test-tokenizer-parity.sh) and requires
 * identical ids for every sentence and configuration (vocabulary, lowercasing, accents, CJK).
 * Prints each mismatch in full; also times the C encoder. Not a test of BertTokenizerFast: its differences are only reported by the script.
 * Usage: test-tokenizer DIR   (DIR holds reference.json and the vocab files it names) */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/status.h"
#include "core/model/tokenizer.h"
#include "tests/check.h"

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Hex string -> bytes (malloc'd, caller frees); NULL on a malformed string. */
static char *unhex(const char *hex, size_t *len)
{
  size_t n = strlen(hex);
  if (n % 2) return NULL;
  char *out = malloc(n / 2 + 1);
  if (!out) return NULL;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
      free(out);
      return NULL;
    }
    out[i] = (char)v;
  }
  out[n / 2] = '\0';
  *len = n / 2;
  return out;
}

/* The sentence with non-printable bytes escaped, for failure messages. */
static void print_text(const char *s, size_t len)
{
  fputc('"', stderr);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') fprintf(stderr, "\\x%02x", c);
    else fputc(c, stderr);
  }
  fputc('"', stderr);
}

static void print_ids(const char *label, const t3d_tokenizer *tok, const int32_t *ids, size_t n)
{
  char *dec = NULL;
  fprintf(stderr, "    %s (%zu):", label, n);
  for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
  if (t3d_tokenizer_decode(tok, ids, n, &dec) == T3D_OK) fprintf(stderr, "\n      = %s\n", dec);
  free(dec);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR (with reference.json from tokenizer_reference.py)\n", argv[0]);
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/reference.json", argv[1]);
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  if (!root) {
    fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
    return 1;
  }
  json_t *configs = json_object_get(root, "configs"), *cases = json_object_get(root, "cases");
  int max_length = (int)json_integer_value(json_object_get(root, "max_length"));
  CHECK(json_array_size(configs) >= 2);
  CHECK(json_array_size(cases) >= 500);
  fprintf(stderr, "reference: transformers %s, Unicode %s (C tables: Unicode from tools/gen-unicode-tables.py)\n",
          json_string_value(json_object_get(root, "transformers")),
          json_string_value(json_object_get(root, "unicode")));

  size_t n_enc = 0, n_mismatch = 0, total_bytes = 0, total_ids = 0;
  double t_total = 0, t_worst = 0;
  size_t worst_case = 0;
  int32_t *ids = calloc((size_t)max_length, sizeof *ids), *pids = calloc((size_t)max_length, sizeof *pids);
  int32_t *mask = calloc((size_t)max_length, sizeof *mask);
  for (size_t c = 0; c < json_array_size(configs) && ids && pids && mask; c++) {
    json_t *cfg = json_array_get(configs, c);
    const char *name = json_string_value(json_object_get(cfg, "name"));
    t3d_tokenizer_params p = t3d_tokenizer_default_params();
    json_t *strip = json_object_get(cfg, "strip_accents");
    p.do_lower_case = json_is_true(json_object_get(cfg, "do_lower_case"));
    p.strip_accents = json_is_null(strip) ? T3D_STRIP_ACCENTS_FOLLOW_LOWERCASE
                      : json_is_true(strip) ? T3D_STRIP_ACCENTS_ON : T3D_STRIP_ACCENTS_OFF;
    p.tokenize_chinese_chars = json_is_true(json_object_get(cfg, "tokenize_chinese_chars"));
    p.max_length = max_length;
    snprintf(path, sizeof path, "%s/%s", argv[1], json_string_value(json_object_get(cfg, "vocab")));
    t3d_tokenizer *tok = NULL;
    CHECK_STATUS(t3d_tokenizer_new_from_file(path, &p, &tok), T3D_OK);
    if (!tok) continue;
    CHECK_INT_EQ(t3d_tokenizer_vocab_size(tok), json_integer_value(json_object_get(cfg, "vocab_size")));

    for (size_t i = 0; i < json_array_size(cases); i++) {
      json_t *cs = json_array_get(cases, i), *want = json_object_get(cs, name);
      size_t len = 0, n = 0, np = 0;
      char *text = unhex(json_string_value(json_object_get(cs, "hex")), &len);
      if (!text || !json_is_array(want)) {
        fprintf(stderr, "case %zu: malformed reference entry\n", i);
        check_failures++;
        free(text);
        continue;
      }
      double t0 = now_s();
      t3d_status st = t3d_tokenizer_encode(tok, text, len, 0, ids, mask, (size_t)max_length, &n, NULL);
      double dt = now_s() - t0;
      t_total += dt;
      if (dt > t_worst) {
        t_worst = dt;
        worst_case = i;
      }
      total_bytes += len;
      total_ids += n;
      n_enc++;

      size_t nw = json_array_size(want), first = 0;
      while (first < n && first < nw && ids[first] == (int32_t)json_integer_value(json_array_get(want, first)))
        first++;
      check_count++;
      if (st != T3D_OK || n != nw || first != n) {
        n_mismatch++;
        check_failures++;
        int32_t *w = calloc(nw ? nw : 1, sizeof *w);
        for (size_t k = 0; w && k < nw; k++) w[k] = (int32_t)json_integer_value(json_array_get(want, k));
        fprintf(stderr, "MISMATCH [%s] case %zu (status %d %s), first difference at position %zu:\n  ", name, i,
                (int)st, st ? t3d_error_detail() : "", first);
        print_text(text, len);
        fputc('\n', stderr);
        print_ids("C  ", tok, ids, n);
        if (w) print_ids("HF ", tok, w, nw);
        free(w);
      }

      /* Padding to max_length: the same ids, then [PAD] with mask 0. */
      CHECK_STATUS(t3d_tokenizer_encode(tok, text, len, T3D_TOKENIZE_PAD, pids, mask, (size_t)max_length, &np, NULL),
                   T3D_OK);
      int pad_ok = np == (size_t)max_length && memcmp(pids, ids, n * sizeof *ids) == 0;
      for (size_t k = 0; pad_ok && k < np; k++)
        pad_ok = (k < n ? mask[k] == 1 : (mask[k] == 0 && pids[k] == t3d_tokenizer_pad_id(tok)));
      CHECK(pad_ok);
      free(text);
    }
    t3d_tokenizer_free(tok);
  }
  free(ids);
  free(pids);
  free(mask);
  json_decref(root);
  fprintf(stderr, "%zu encodings, %zu mismatches with BertTokenizer\n", n_enc, n_mismatch);
  if (n_enc)
    fprintf(stderr, "C encode: %.1f us per sentence on average (%.1f MB/s, %.0f ids/ms), slowest %.1f us (case %zu)\n",
            1e6 * t_total / n_enc, total_bytes / t_total / 1e6, total_ids / t_total / 1e3, 1e6 * t_worst, worst_case);
  return check_finish("test-tokenizer");
}
