/* Unit tests of the WordPiece tokenizer without Python: lowering, accents, NFC, CJK, punctuation,
 * control characters, invalid UTF-8, [UNK] rules, special tokens in text, truncation, padding,
 * vocabulary parsing and errors, plus a timing of a 256-token report. Expected ids were worked
 * out by hand from BertTokenizer's rules; tests/test-tokenizer-parity.sh checks against HF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/status.h"
#include "core/model/tokenizer.h"
#include "tests/check.h"

static const char *const VOCAB[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                 /* 0-4 */
    "right", "lung", "nod", "##ule", ".",                          /* 5-9 */
    "cafe", "café", "Café", "Å", "5",                              /* 10-14 */
    "mm", "3", "2", "##x", "##4",                                  /* 15-19 */
    "右", "肺", "a", "##a", "i",                                   /* 20-24 */
    "ᄒ", "##ᅡ", "##ᆫ", "ασ", "-",                                 /* 25-29 */
    "x", "fetoprotein", "α", "[", "]",                             /* 30-34 */
    "sep", "lu", "##ng", "한",                                     /* 35-38 */
};
#define N_VOCAB (sizeof VOCAB / sizeof VOCAB[0])

/* Encodes text (len bytes; -1: strlen) and compares with want[] (no padding). */
static void expect_ids_len(const t3d_tokenizer *tok, const char *text, long len, const int32_t *want, size_t n_want,
                           int line)
{
  int32_t ids[256], mask[256];
  size_t n = 0;
  size_t l = len < 0 ? strlen(text) : (size_t)len;
  t3d_status st = t3d_tokenizer_encode(tok, text, l, 0, ids, mask, 256, &n, NULL);
  int ok = st == T3D_OK && n == n_want && memcmp(ids, want, n * sizeof *ids) == 0;
  for (size_t i = 0; ok && i < n; i++) ok = mask[i] == 1;
  check_count++;
  if (!ok) {
    check_failures++;
    fprintf(stderr, "line %d: FAIL: \"%s\" (status %d %s)\n  got: ", line, text, (int)st, t3d_error_detail());
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%d ", ids[i]);
    fprintf(stderr, "\n want: ");
    for (size_t i = 0; i < n_want; i++) fprintf(stderr, "%d ", want[i]);
    fprintf(stderr, "\n");
  }
}
#define EXPECT(tok, text, ...)                                                           \
  do {                                                                                   \
    static const int32_t want_[] = {__VA_ARGS__};                                        \
    expect_ids_len(tok, text, -1, want_, sizeof want_ / sizeof want_[0], __LINE__);      \
  } while (0)
#define EXPECT_BYTES(tok, text, len, ...)                                                \
  do {                                                                                   \
    static const int32_t want_[] = {__VA_ARGS__};                                        \
    expect_ids_len(tok, text, len, want_, sizeof want_ / sizeof want_[0], __LINE__);     \
  } while (0)

static t3d_tokenizer *make(int lower, int max_length)
{
  t3d_tokenizer_params p = t3d_tokenizer_default_params();
  p.do_lower_case = lower;
  p.max_length = max_length;
  t3d_tokenizer *tok = NULL;
  CHECK_STATUS(t3d_tokenizer_new_from_vocab(VOCAB, N_VOCAB, &p, &tok), T3D_OK);
  return tok;
}

static void test_uncased_basic_rules(void)
{
  t3d_tokenizer *t = make(1, 256);
  if (!t) return;
  EXPECT(t, "Right LUNG nodule.", 2, 5, 6, 7, 8, 9, 3);
  EXPECT(t, "", 2, 3);
  EXPECT(t, "   \t\n  ", 2, 3);
  EXPECT(t, "CAFÉ café Cafe\xcc\x81", 2, 10, 10, 10, 3); /* accents stripped, NFD input too */
  EXPECT(t, "5 mm 3.2x4", 2, 14, 15, 16, 9, 17, 18, 19, 3);
  EXPECT(t, "右肺", 2, 20, 21, 3);
  EXPECT(t, "x右x", 2, 30, 20, 30, 3); /* CJK split off even inside a word */
  EXPECT(t, "lu\x01ng lu\xe2\x80\x8bng", 2, 6, 6, 3); /* control, ZWSP (Cf) dropped */
  EXPECT(t, "right\xe2\x80\xa8lung right\xc2\xa0lung", 2, 5, 6, 5, 6, 3); /* U+2028, NBSP split */
  EXPECT(t, "한", 2, 25, 26, 27, 3);                                   /* Hangul -> jamo by NFD */
  EXPECT(t, "ΑΣ", 2, 28, 3); /* per-character lowering: no final sigma (HF lowers char by char) */
  EXPECT(t, "\xc4\xb0", 2, 24, 3); /* U+0130 -> "i" + U+0307, mark stripped */
  EXPECT(t, "α-fetoprotein", 2, 32, 29, 31, 3);
  EXPECT(t, "zzz", 2, 1, 3);
  EXPECT(t, "nodzz", 2, 1, 3);            /* one unmatched part makes the whole word [UNK] */
  EXPECT(t, "right [SEP] lung", 2, 5, 3, 6, 3);
  EXPECT(t, "right[SEP]lung", 2, 5, 3, 6, 3);
  EXPECT(t, "[sep]", 2, 33, 35, 34, 3); /* lowercase is not the special token */
  EXPECT(t, "[UNK][MASK]", 2, 1, 4, 3);
  t3d_tokenizer_free(t);
}

static void test_cased_keeps_accents_and_composes(void)
{
  t3d_tokenizer *t = make(0, 256);
  if (!t) return;
  EXPECT(t, "Café", 2, 12, 3);
  EXPECT(t, "Cafe\xcc\x81", 2, 12, 3); /* NFC composes e + U+0301 */
  EXPECT(t, "café", 2, 11, 3);
  EXPECT(t, "\xe2\x84\xab", 2, 13, 3);  /* U+212B ANGSTROM SIGN -> U+00C5 by NFC */
  EXPECT(t, "Right", 2, 1, 3);
  EXPECT(t, "[sep]", 2, 33, 35, 34, 3);
  EXPECT(t, "[\xe2\x80\x8bSEP]", 2, 3, 3); /* after cleaning it is never_split "[SEP]" */
  t3d_tokenizer_free(t);
}

static void test_invalid_utf8_is_dropped(void)
{
  t3d_tokenizer *t = make(1, 256);
  if (!t) return;
  EXPECT(t, "lu\xffng", 2, 6, 3);
  EXPECT(t, "lu\xed\xa0\x80ng", 2, 6, 3);      /* encoded surrogate */
  EXPECT(t, "lu\xc0\xafng", 2, 6, 3);          /* overlong "/" is not punctuation */
  EXPECT(t, "lu\xf4\x90\x80\x80ng", 2, 6, 3);  /* above U+10FFFF */
  EXPECT(t, "lung\xe2\x82", 2, 6, 3);                 /* truncated at the end */
  EXPECT_BYTES(t, "lu\0ng", 5, 2, 6, 3);        /* NUL is dropped, not an end */
  EXPECT(t, "\xef\xbf\xbd", 2, 3);                    /* U+FFFD itself is dropped */
  t3d_tokenizer_free(t);
}

static void test_long_words_and_truncation(void)
{
  t3d_tokenizer *t = make(1, 256);
  if (!t) return;
  char word[102];
  int32_t ids[256], mask[256];
  size_t n = 0, pieces = 0;
  memset(word, 'a', 100);
  word[100] = '\0';
  CHECK_STATUS(t3d_tokenizer_encode(t, word, 100, 0, ids, mask, 256, &n, &pieces), T3D_OK);
  CHECK_INT_EQ(n, 102); /* 100 chars is allowed: a ##a ##a ... */
  CHECK_INT_EQ(ids[1], 22);
  CHECK_INT_EQ(ids[100], 23);
  strcat(word, "a");
  EXPECT(t, word, 2, 1, 3); /* 101 chars: [UNK] */
  t3d_tokenizer_free(t);

  t = make(1, 5);
  if (!t) return;
  CHECK_STATUS(t3d_tokenizer_encode(t, "right lung nodule right", 23, T3D_TOKENIZE_PAD, ids, mask, 5, &n, &pieces),
               T3D_OK);
  CHECK_INT_EQ(n, 5);
  CHECK_INT_EQ(pieces, 5);
  CHECK(ids[0] == 2 && ids[1] == 5 && ids[2] == 6 && ids[3] == 7 && ids[4] == 3);
  CHECK_STATUS(t3d_tokenizer_encode(t, "lung", 4, T3D_TOKENIZE_PAD, ids, mask, 5, &n, &pieces), T3D_OK);
  CHECK_INT_EQ(n, 5);
  CHECK(ids[0] == 2 && ids[1] == 6 && ids[2] == 3 && ids[3] == 0 && ids[4] == 0);
  CHECK(mask[0] == 1 && mask[2] == 1 && mask[3] == 0 && mask[4] == 0);
  CHECK_STATUS(t3d_tokenizer_encode(t, "right lung nodule right", 23, T3D_TOKENIZE_NO_SPECIAL, ids, NULL, 5, &n,
                                    NULL),
               T3D_OK);
  CHECK_INT_EQ(n, 5);
  CHECK(ids[0] == 5 && ids[4] == 5);
  CHECK_STATUS(t3d_tokenizer_encode(t, "lung", 4, 0, ids, mask, 4, &n, NULL), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_tokenizer_encode(t, NULL, 0, 0, ids, mask, 5, &n, NULL), T3D_OK);
  CHECK_INT_EQ(n, 2);
  CHECK_STATUS(t3d_tokenizer_encode(t, NULL, 3, 0, ids, mask, 5, &n, NULL), T3D_ERR_INVALID_ARG);
  t3d_tokenizer_free(t);
}

static void test_vocab_parsing_and_errors(void)
{
  t3d_tokenizer *t = NULL;
  const char text[] = "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\n\nlung\nlung\n##ung";
  CHECK_STATUS(t3d_tokenizer_new_from_vocab_text(text, sizeof text - 1, NULL, &t), T3D_OK);
  if (t) {
    CHECK_INT_EQ(t3d_tokenizer_vocab_size(t), 8);
    CHECK_INT_EQ(t3d_tokenizer_token_to_id(t, "[CLS]"), 2);
    CHECK_INT_EQ(t3d_tokenizer_token_to_id(t, ""), 4);
    CHECK_INT_EQ(t3d_tokenizer_token_to_id(t, "lung"), 6); /* the later duplicate wins */
    CHECK_INT_EQ(t3d_tokenizer_token_to_id(t, "[MASK]"), -1);
    CHECK_INT_EQ(t3d_tokenizer_pad_id(t), 0);
    CHECK(strcmp(t3d_tokenizer_id_to_token(t, 7), "##ung") == 0);
    CHECK(t3d_tokenizer_id_to_token(t, 8) == NULL);
    CHECK(t3d_tokenizer_id_to_token(t, -1) == NULL);
    EXPECT(t, "[MASK] lung", 2, 1, 1, 1, 6, 3); /* no [MASK] in vocab: plain text; "[" is [UNK] */
    int32_t ids[3] = {2, 6, 99};
    char *s = NULL;
    CHECK_STATUS(t3d_tokenizer_decode(t, ids, 3, &s), T3D_OK);
    CHECK(s && strcmp(s, "[CLS] lung <99?>") == 0);
    free(s);
    t3d_tokenizer_free(t);
  }
  t3d_tokenizer_free(NULL);

  t = NULL;
  CHECK_STATUS(t3d_tokenizer_new_from_vocab_text("[PAD]\n[CLS]\n[SEP]\n", 18, NULL, &t), T3D_ERR_INVALID_ARG);
  CHECK(t == NULL);
  CHECK(strstr(t3d_error_detail(), "[UNK]") != NULL);
  CHECK_STATUS(t3d_tokenizer_new_from_vocab_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nlu\xffng\n", 30, NULL, &t),
               T3D_ERR_INVALID_ARG);
  CHECK(strstr(t3d_error_detail(), "line 5") != NULL);
  CHECK_STATUS(t3d_tokenizer_new_from_vocab_text("", 0, NULL, &t), T3D_ERR_INVALID_ARG);
  t3d_tokenizer_params p = t3d_tokenizer_default_params();
  p.max_length = 1;
  CHECK_STATUS(t3d_tokenizer_new_from_vocab(VOCAB, N_VOCAB, &p, &t), T3D_ERR_INVALID_ARG);
  p = t3d_tokenizer_default_params();
  p.strip_accents = 7;
  CHECK_STATUS(t3d_tokenizer_new_from_vocab(VOCAB, N_VOCAB, &p, &t), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_tokenizer_new_from_file("/nonexistent/vocab.txt", NULL, &t), T3D_ERR_IO);
  CHECK(strstr(t3d_error_detail(), "/nonexistent/vocab.txt") != NULL);
  CHECK_STATUS(t3d_tokenizer_new_from_vocab(VOCAB, N_VOCAB, NULL, NULL), T3D_ERR_INVALID_ARG);

  /* strip_accents forced on for a cased tokenizer, and off for an uncased one. */
  p = t3d_tokenizer_default_params();
  p.do_lower_case = 0;
  p.strip_accents = T3D_STRIP_ACCENTS_ON;
  CHECK_STATUS(t3d_tokenizer_new_from_vocab(VOCAB, N_VOCAB, &p, &t), T3D_OK);
  if (t) {
    EXPECT(t, "cafe\xcc\x81 Café", 2, 10, 1, 3);
    t3d_tokenizer_free(t);
  }
  p.do_lower_case = 1;
  p.strip_accents = T3D_STRIP_ACCENTS_OFF;
  CHECK_STATUS(t3d_tokenizer_new_from_vocab(VOCAB, N_VOCAB, &p, &t), T3D_OK);
  if (t) {
    EXPECT(t, "CAFÉ", 2, 11, 3);
    t3d_tokenizer_free(t);
  }
}

static void test_vocab_file(void)
{
  char path[] = "/tmp/t3d-vocab-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  FILE *f = fdopen(fd, "w");
  for (size_t i = 0; i < N_VOCAB; i++) fprintf(f, "%s\n", VOCAB[i]);
  fclose(f);
  t3d_tokenizer *t = NULL;
  CHECK_STATUS(t3d_tokenizer_new_from_file(path, NULL, &t), T3D_OK);
  remove(path);
  if (!t) return;
  CHECK_INT_EQ(t3d_tokenizer_vocab_size(t), N_VOCAB);
  EXPECT(t, "Right lung nodule.", 2, 5, 6, 7, 8, 9, 3);
  t3d_tokenizer_free(t);
}

/* Random bytes (mostly invalid UTF-8, controls, high code points) and random vocabularies:
 * every call must return a status, never crash; ASan/UBSan builds check memory. */
static void test_random_bytes_do_not_crash(void)
{
  t3d_tokenizer *lower = make(1, 64), *cased = make(0, 64);
  if (!lower || !cased) goto done;
  uint64_t x = 88172645463325252ull;
  char buf[300];
  int32_t ids[64], mask[64];
  int ok = 1;
  for (int it = 0; it < 3000; it++) {
    size_t len = 0, want = (size_t)(it % 300);
    while (len < want) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      /* Bias towards UTF-8 lead/continuation bytes, ASCII punctuation and the specials' "[". */
      unsigned r = (unsigned)(x >> 32);
      static const char ascii[] = "[]UNKSEP a#\t";
      unsigned byte = (r & 3) == 0   ? 0x80 + (r >> 8) % 0x40
                      : (r & 3) == 1 ? 0xC0 + (r >> 8) % 0x38
                      : (r & 3) == 2 ? (unsigned char)ascii[(r >> 8) % (sizeof ascii - 1)]
                                     : (r >> 8) & 0xFF;
      buf[len++] = (char)byte;
    }
    size_t n = 0, pieces = 0;
    t3d_tokenizer *t = (it & 1) ? lower : cased;
    if (t3d_tokenizer_encode(t, buf, len, (it & 2) ? T3D_TOKENIZE_PAD : 0, ids, mask, 64, &n, &pieces) != T3D_OK ||
        n < 2 || n > 64 || ids[0] != 2)
      ok = 0;
    /* The same bytes as a vocabulary text: either a tokenizer or a clean error. */
    t3d_tokenizer *v = NULL;
    t3d_status st = t3d_tokenizer_new_from_vocab_text(buf, len, NULL, &v);
    if ((st == T3D_OK) != (v != NULL)) ok = 0;
    t3d_tokenizer_free(v);
  }
  CHECK(ok);
done:
  t3d_tokenizer_free(lower);
  t3d_tokenizer_free(cased);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A report longer than 254 wordpieces (truncated to 256 ids): reports the time per encode. */
static void test_speed_of_a_256_token_report(void)
{
  t3d_tokenizer *t = make(1, 256);
  if (!t) return;
  static const char unit[] = "Right LUNG nodule, café 5 mm 右肺 α-fetoprotein. "; /* 14 pieces */
  char text[2048] = "";
  for (int i = 0; i < 19; i++) strcat(text, unit);
  int32_t ids[256], mask[256];
  size_t n = 0, pieces = 0;
  CHECK_STATUS(t3d_tokenizer_encode(t, text, strlen(text), T3D_TOKENIZE_PAD, ids, mask, 256, &n, &pieces), T3D_OK);
  CHECK_INT_EQ(pieces, 19 * 14); /* truncated to 254 */
  CHECK_INT_EQ(n, 256);
  int reps = 2000;
  double t0 = now_s();
  for (int i = 0; i < reps; i++)
    t3d_tokenizer_encode(t, text, strlen(text), T3D_TOKENIZE_PAD, ids, mask, 256, &n, &pieces);
  double per = (now_s() - t0) / reps;
  fprintf(stderr, "encode of a %zu-byte report into 256 ids: %.1f us\n", strlen(text), per * 1e6);
  CHECK(per < 0.01); /* generous: sanitizer builds are slow; the plain build is far below 1 ms */
  t3d_tokenizer_free(t);
}

int main(void)
{
  test_uncased_basic_rules();
  test_cased_keeps_accents_and_composes();
  test_invalid_utf8_is_dropped();
  test_long_words_and_truncation();
  test_vocab_parsing_and_errors();
  test_vocab_file();
  test_random_bytes_do_not_crash();
  test_speed_of_a_256_token_report();
  return check_finish("test-tokenizer-unit");
}
