/* WordPiece tokenizer matching transformers' BertTokenizer (slow) id for id; see tokenizer.h.
 * The order of steps follows HF exactly: per-character lowering (PreTrainedTokenizer.tokenize),
 * special-token split, clean text, CJK spacing, NFC, whitespace split, accent stripping (NFD,
 * drop Mn), punctuation split, WordPiece. Not a general normaliser: NFC/NFD live here only. */
#include "core/model/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/unicode_tables.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define REPLACEMENT_CHAR 0xFFFDu

/* Hangul syllable arithmetic (Unicode chapter 3.12). */
enum {
  H_SBASE = 0xAC00, H_LBASE = 0x1100, H_VBASE = 0x1161, H_TBASE = 0x11A7,
  H_LCOUNT = 19, H_VCOUNT = 21, H_TCOUNT = 28, H_NCOUNT = H_VCOUNT * H_TCOUNT,
  H_SCOUNT = H_LCOUNT * H_NCOUNT
};

/* Special tokens in HF's all_special_tokens order (matters only when one is a prefix of another). */
enum { SP_UNK, SP_SEP, SP_PAD, SP_CLS, SP_MASK, SP_COUNT };

typedef struct {
  const char *key; /* points into the tokenizer's token pool; not NUL-terminated for "##" keys */
  uint32_t len;
  uint32_t cont; /* 1: key is a "##" token with the prefix removed */
  uint64_t hash;
  int32_t id;
} vocab_slot;

struct t3d_tokenizer {
  t3d_tokenizer_params p;     /* the token strings point at special_str */
  char *special_str[SP_COUNT]; /* owned copies */
  uint32_t *special_cp[SP_COUNT];
  size_t special_len[SP_COUNT];
  int32_t special_id[SP_COUNT]; /* -1: mask token absent from the vocabulary */
  int strip;                    /* resolved strip_accents */

  char **tokens; /* id -> NUL-terminated token, into pool */
  char *pool;
  size_t n_tokens;
  vocab_slot *slots;
  size_t slot_mask; /* table size - 1 (power of two) */
};

/* ---- Unicode lookups ------------------------------------------------------------------------ */

static int uc_class(uint32_t cp)
{
  if (cp < 0x80) {
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return T3D_UC_SPACE;
    if (cp < 0x20 || cp == 0x7F) return T3D_UC_CONTROL;
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || cp >= 123)
      return T3D_UC_PUNCT;
    return T3D_UC_OTHER;
  }
  size_t lo = 0, hi = N_ELEMS(t3d_uc_class_runs);
  while (hi - lo > 1) { /* last run whose first code point <= cp */
    size_t mid = (lo + hi) / 2;
    if ((t3d_uc_class_runs[mid] >> 3) <= cp) lo = mid;
    else hi = mid;
  }
  return (int)(t3d_uc_class_runs[lo] & 7u);
}

static unsigned uc_ccc(uint32_t cp)
{
  if (cp < 0x300) return 0;
  size_t lo = 0, hi = N_ELEMS(t3d_uc_ccc_runs);
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if ((t3d_uc_ccc_runs[mid] >> 8) <= cp) lo = mid;
    else hi = mid;
  }
  return t3d_uc_ccc_runs[lo] & 0xFFu;
}

/* Index of cp in a table of (code point, value) pairs sorted by code point, or -1. */
static long pair_find(const uint32_t *pairs, size_t n_pairs, uint32_t cp)
{
  size_t lo = 0, hi = n_pairs;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (pairs[2 * mid] < cp) lo = mid + 1;
    else hi = mid;
  }
  return (lo < n_pairs && pairs[2 * lo] == cp) ? (long)lo : -1;
}

/* Python's chr(cp).lower(): writes 1..3 code points to out, returns how many. */
static int uc_lower(uint32_t cp, uint32_t out[3])
{
  if (cp < 0x80) {
    out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return 1;
  }
  for (size_t i = 0; i < N_ELEMS(t3d_uc_lower_full); i += 5) {
    if (t3d_uc_lower_full[i] == cp) {
      int n = (int)t3d_uc_lower_full[i + 1];
      for (int k = 0; k < n; k++) out[k] = t3d_uc_lower_full[i + 2 + k];
      return n;
    }
  }
  long k = pair_find(t3d_uc_lower, N_ELEMS(t3d_uc_lower) / 2, cp);
  out[0] = k < 0 ? cp : t3d_uc_lower[2 * k + 1];
  return 1;
}

static uint32_t uc_compose(uint32_t a, uint32_t b)
{
  if (a - H_LBASE < H_LCOUNT && b - H_VBASE < H_VCOUNT)
    return H_SBASE + ((a - H_LBASE) * H_VCOUNT + (b - H_VBASE)) * H_TCOUNT;
  if (a - H_SBASE < H_SCOUNT && (a - H_SBASE) % H_TCOUNT == 0 && b - H_TBASE - 1 < H_TCOUNT - 1)
    return a + (b - H_TBASE);
  uint64_t key = ((uint64_t)a << 21) | b;
  size_t lo = 0, hi = N_ELEMS(t3d_uc_comp) / 2;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (t3d_uc_comp[2 * mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return (lo < N_ELEMS(t3d_uc_comp) / 2 && t3d_uc_comp[2 * lo] == key) ? (uint32_t)t3d_uc_comp[2 * lo + 1] : 0;
}

/* ---- growable code point buffers ---------------------------------------------------------- */

typedef struct {
  uint32_t *v;
  size_t n, cap;
} cpbuf;

static int cp_reserve(cpbuf *b, size_t extra)
{
  if (b->n + extra <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->n + extra) {
    if (cap > SIZE_MAX / 2 / sizeof(uint32_t)) return -1;
    cap *= 2;
  }
  uint32_t *v = realloc(b->v, cap * sizeof *v);
  if (!v) return -1;
  b->v = v;
  b->cap = cap;
  return 0;
}

static int cp_push(cpbuf *b, uint32_t c)
{
  if (b->n == b->cap && cp_reserve(b, 1)) return -1;
  b->v[b->n++] = c;
  return 0;
}

/* Per-call scratch space, so a const tokenizer can encode on several threads. */
typedef struct {
  cpbuf text;  /* decoded input */
  cpbuf seg;   /* lowered text between special tokens */
  cpbuf clean; /* cleaned, CJK-spaced segment */
  cpbuf norm;  /* one word after NFC */
  cpbuf strip; /* one word after NFD without Mn */
  cpbuf ids;   /* wordpiece ids (as uint32) */
  char *utf8;  /* one piece as UTF-8 */
  size_t utf8_cap;
  size_t *offs; /* byte offset of each code point of the piece, plus the end */
  size_t offs_cap;
} scratch;

static void scratch_free(scratch *s)
{
  free(s->text.v);
  free(s->seg.v);
  free(s->clean.v);
  free(s->norm.v);
  free(s->strip.v);
  free(s->ids.v);
  free(s->utf8);
  free(s->offs);
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

/* Decodes one code point at s[0..len); returns bytes consumed (>= 1). Invalid sequences
 * (overlong, surrogates, > U+10FFFF, truncated) give U+FFFD for their first byte. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
  unsigned c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t need;
  uint32_t v;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) { need = 1; v = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2; v = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3; v = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *cp = REPLACEMENT_CHAR;
    return 1;
  }
  if (len < need + 1) {
    *cp = REPLACEMENT_CHAR;
    return 1;
  }
  for (size_t i = 1; i <= need; i++) {
    unsigned b = s[i];
    if (b < lo || b > hi) {
      *cp = REPLACEMENT_CHAR;
      return 1;
    }
    lo = 0x80;
    hi = 0xBF;
    v = (v << 6) | (b & 0x3F);
  }
  *cp = v;
  return need + 1;
}

static size_t utf8_put(uint32_t cp, char *out)
{
  if (cp < 0x80) { out[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* 1 when s[0..len) is valid UTF-8 (the vocabulary must be: HF reads it strictly). */
static int utf8_valid(const char *s, size_t len)
{
  size_t i = 0;
  while (i < len) {
    uint32_t cp;
    size_t k = utf8_next((const unsigned char *)s + i, len - i, &cp);
    if (cp == REPLACEMENT_CHAR && k == 1) return 0; /* a real U+FFFD takes 3 bytes */
    i += k;
  }
  return 1;
}

static int utf8_decode(const char *s, size_t len, cpbuf *out)
{
  if (cp_reserve(out, len)) return -1;
  size_t i = 0;
  while (i < len) {
    uint32_t cp;
    i += utf8_next((const unsigned char *)s + i, len - i, &cp);
    out->v[out->n++] = cp;
  }
  return 0;
}

/* ---- normalisation ---------------------------------------------------------------------- */

/* Appends the canonical decomposition (NFD) of in[0..n) to out, canonically ordered. */
static int nfd_append(const uint32_t *in, size_t n, cpbuf *out)
{
  size_t start = out->n;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = in[i];
    if (c < 0xC0) {
      if (cp_push(out, c)) return -1;
    } else if (c - H_SBASE < H_SCOUNT) {
      uint32_t s = c - H_SBASE;
      if (cp_reserve(out, 3)) return -1;
      out->v[out->n++] = H_LBASE + s / H_NCOUNT;
      out->v[out->n++] = H_VBASE + (s % H_NCOUNT) / H_TCOUNT;
      if (s % H_TCOUNT) out->v[out->n++] = H_TBASE + s % H_TCOUNT;
    } else {
      long k = pair_find(t3d_uc_decomp, N_ELEMS(t3d_uc_decomp) / 2, c);
      if (k < 0) {
        if (cp_push(out, c)) return -1;
      } else {
        uint32_t packed = t3d_uc_decomp[2 * k + 1];
        size_t off = packed >> 8, len = packed & 0xFF;
        if (cp_reserve(out, len)) return -1;
        memcpy(out->v + out->n, t3d_uc_decomp_pool + off, len * sizeof(uint32_t));
        out->n += len;
      }
    }
  }
  /* Canonical ordering: stable sort of each run of non-starters by combining class. */
  uint32_t *v = out->v;
  for (size_t i = start + 1; i < out->n; i++) {
    unsigned cc = uc_ccc(v[i]);
    if (cc == 0) continue;
    size_t j = i;
    uint32_t c = v[i];
    while (j > start && uc_ccc(v[j - 1]) > cc) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = c;
  }
  return 0;
}

/* Canonical composition in place (the second half of NFC); returns the new length. */
static size_t compose_in_place(uint32_t *v, size_t n)
{
  size_t w = 0;
  long starter = -1;
  unsigned last_cc = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = v[i];
    unsigned cc = uc_ccc(c);
    if (starter >= 0) {
      int adjacent = (size_t)starter == w - 1;
      if (adjacent || (last_cc != 0 && last_cc < cc)) {
        uint32_t comp = uc_compose(v[starter], c);
        if (comp) {
          v[starter] = comp;
          continue;
        }
      }
    }
    if (cc == 0) starter = (long)w;
    last_cc = cc;
    v[w++] = c;
  }
  return w;
}

/* NFC of in[0..n) into out (replacing its contents). */
static int nfc(const uint32_t *in, size_t n, cpbuf *out)
{
  out->n = 0;
  if (nfd_append(in, n, out)) return -1;
  out->n = compose_in_place(out->v, out->n);
  return 0;
}

/* ---- vocabulary hash table -------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len, uint32_t cont)
{
  uint64_t h = 1469598103934665603ull ^ cont;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

static int32_t vocab_lookup(const t3d_tokenizer *t, const char *s, size_t len, uint32_t cont)
{
  uint64_t h = hash_bytes(s, len, cont);
  for (size_t i = (size_t)h & t->slot_mask;; i = (i + 1) & t->slot_mask) {
    const vocab_slot *sl = &t->slots[i];
    if (!sl->key) return -1;
    if (sl->hash == h && sl->len == len && sl->cont == cont && memcmp(sl->key, s, len) == 0)
      return sl->id;
  }
}

/* Inserts or overwrites (a later duplicate keeps the later id, as a Python dict). */
static void vocab_insert(t3d_tokenizer *t, const char *s, size_t len, uint32_t cont, int32_t id)
{
  uint64_t h = hash_bytes(s, len, cont);
  for (size_t i = (size_t)h & t->slot_mask;; i = (i + 1) & t->slot_mask) {
    vocab_slot *sl = &t->slots[i];
    if (!sl->key) {
      sl->key = s;
      sl->len = (uint32_t)len;
      sl->cont = cont;
      sl->hash = h;
      sl->id = id;
      return;
    }
    if (sl->hash == h && sl->len == len && sl->cont == cont && memcmp(sl->key, s, len) == 0) {
      sl->id = id;
      return;
    }
  }
}

/* ---- construction ------------------------------------------------------------------------ */

t3d_tokenizer_params t3d_tokenizer_default_params(void)
{
  t3d_tokenizer_params p;
  p.do_lower_case = 1;
  p.strip_accents = T3D_STRIP_ACCENTS_FOLLOW_LOWERCASE;
  p.tokenize_chinese_chars = 1;
  p.max_length = 256;
  p.max_input_chars_per_word = 100;
  p.unk_token = "[UNK]";
  p.cls_token = "[CLS]";
  p.sep_token = "[SEP]";
  p.pad_token = "[PAD]";
  p.mask_token = "[MASK]";
  return p;
}

void t3d_tokenizer_free(t3d_tokenizer *t)
{
  if (!t) return;
  for (int i = 0; i < SP_COUNT; i++) {
    free(t->special_str[i]);
    free(t->special_cp[i]);
  }
  free(t->tokens);
  free(t->pool);
  free(t->slots);
  free(t);
}

/* The shared constructor: n tokens given as (pointer, length) pairs. */
static t3d_status tokenizer_build(const char *const *tok, const size_t *tok_len, size_t n,
                                  const t3d_tokenizer_params *pin, t3d_tokenizer **out)
{
  t3d_tokenizer *t = NULL;
  t3d_status st = T3D_OK;
  t3d_tokenizer_params p = pin ? *pin : t3d_tokenizer_default_params();
  if (!out) return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: out pointer is NULL");
  *out = NULL;
  if (n == 0) return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: the vocabulary is empty");
  if (n > (size_t)INT32_MAX / 4)
    return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: vocabulary of %zu tokens is too large", n);
  if (p.max_length < 2)
    return t3d_error(T3D_ERR_INVALID_ARG,
                     "tokenizer: max_length %d is too small (need room for [CLS] and [SEP])", p.max_length);
  if (p.max_input_chars_per_word < 1)
    return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: max_input_chars_per_word %d must be positive",
                     p.max_input_chars_per_word);
  if (p.strip_accents < -1 || p.strip_accents > 1)
    return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: strip_accents %d is not -1, 0 or 1", p.strip_accents);

  t = calloc(1, sizeof *t);
  if (!t) return t3d_error(T3D_ERR_NOMEM, "tokenizer: out of memory");

  size_t pool_size = 0;
  for (size_t i = 0; i < n; i++) {
    if (!tok[i]) {
      st = t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: vocabulary entry %zu is NULL", i);
      goto cleanup;
    }
    if (!utf8_valid(tok[i], tok_len[i])) {
      st = t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: vocabulary entry %zu (line %zu) is not valid UTF-8", i, i + 1);
      goto cleanup;
    }
    pool_size += tok_len[i] + 1;
  }
  size_t slots = 16;
  while (slots < 4 * n) slots *= 2; /* each token may take two slots (full + "##" key) */
  t->pool = malloc(pool_size);
  t->tokens = malloc(n * sizeof *t->tokens);
  t->slots = calloc(slots, sizeof *t->slots);
  if (!t->pool || !t->tokens || !t->slots) {
    st = t3d_error(T3D_ERR_NOMEM, "tokenizer: out of memory for a vocabulary of %zu tokens", n);
    goto cleanup;
  }
  t->slot_mask = slots - 1;
  t->n_tokens = n;
  char *w = t->pool;
  for (size_t i = 0; i < n; i++) {
    memcpy(w, tok[i], tok_len[i]);
    w[tok_len[i]] = '\0';
    t->tokens[i] = w;
    vocab_insert(t, w, tok_len[i], 0, (int32_t)i);
    if (tok_len[i] >= 2 && w[0] == '#' && w[1] == '#') vocab_insert(t, w + 2, tok_len[i] - 2, 1, (int32_t)i);
    w += tok_len[i] + 1;
  }

  const char *names[SP_COUNT] = {"unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
  const char *vals[SP_COUNT] = {p.unk_token, p.sep_token, p.pad_token, p.cls_token, p.mask_token};
  for (int i = 0; i < SP_COUNT; i++) {
    t->special_id[i] = -1;
    if (!vals[i] || !vals[i][0]) {
      if (i == SP_MASK) continue;
      st = t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: %s is empty", names[i]);
      goto cleanup;
    }
    size_t len = strlen(vals[i]);
    t->special_id[i] = vocab_lookup(t, vals[i], len, 0);
    if (t->special_id[i] < 0) {
      if (i == SP_MASK) continue;
      st = t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: %s \"%s\" is not in the vocabulary (%zu tokens); "
                     "is this the vocab.txt that belongs to the model?", names[i], vals[i], n);
      goto cleanup;
    }
    cpbuf cps = {0};
    t->special_str[i] = malloc(len + 1);
    if (!t->special_str[i] || utf8_decode(vals[i], len, &cps)) {
      free(cps.v);
      st = t3d_error(T3D_ERR_NOMEM, "tokenizer: out of memory");
      goto cleanup;
    }
    memcpy(t->special_str[i], vals[i], len + 1);
    t->special_cp[i] = cps.v;
    t->special_len[i] = cps.n;
  }
  p.unk_token = t->special_str[SP_UNK];
  p.sep_token = t->special_str[SP_SEP];
  p.pad_token = t->special_str[SP_PAD];
  p.cls_token = t->special_str[SP_CLS];
  p.mask_token = t->special_str[SP_MASK];
  t->p = p;
  t->strip = p.strip_accents == T3D_STRIP_ACCENTS_FOLLOW_LOWERCASE ? (p.do_lower_case != 0)
                                                                   : p.strip_accents == T3D_STRIP_ACCENTS_ON;
  *out = t;
  t = NULL;
cleanup:
  t3d_tokenizer_free(t);
  return st;
}

t3d_status t3d_tokenizer_new_from_vocab(const char *const *tokens, size_t n, const t3d_tokenizer_params *p,
                                        t3d_tokenizer **out)
{
  if (out) *out = NULL;
  if (!tokens && n) return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: tokens is NULL");
  size_t *lens = malloc((n ? n : 1) * sizeof *lens);
  if (!lens) return t3d_error(T3D_ERR_NOMEM, "tokenizer: out of memory");
  for (size_t i = 0; i < n; i++) lens[i] = tokens[i] ? strlen(tokens[i]) : 0;
  t3d_status st = tokenizer_build(tokens, lens, n, p, out);
  free(lens);
  return st;
}

t3d_status t3d_tokenizer_new_from_vocab_text(const char *text, size_t len, const t3d_tokenizer_params *p,
                                             t3d_tokenizer **out)
{
  const char **toks = NULL;
  size_t *lens = NULL;
  size_t n = 0, cap = 0, i = 0;
  t3d_status st;
  if (out) *out = NULL;
  if (!text && len) return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: vocabulary text is NULL");
  while (i < len) { /* lines end with \n, \r\n or \r; a final line without an end counts */
    size_t start = i;
    while (i < len && text[i] != '\n' && text[i] != '\r') i++;
    if (n == cap) {
      size_t ncap = cap ? 2 * cap : 1024;
      const char **nt = realloc(toks, ncap * sizeof *nt);
      if (nt) toks = nt;
      size_t *nl = realloc(lens, ncap * sizeof *nl);
      if (nl) lens = nl;
      if (!nt || !nl) {
        st = t3d_error(T3D_ERR_NOMEM, "tokenizer: out of memory reading the vocabulary");
        goto cleanup;
      }
      cap = ncap;
    }
    toks[n] = text + start;
    lens[n] = i - start;
    n++;
    if (i < len && text[i] == '\r') {
      i++;
      if (i < len && text[i] == '\n') i++; /* "\r\n" is one line end */
    } else if (i < len) {
      i++; /* "\n" */
    }
  }
  st = tokenizer_build(toks, lens, n, p, out);
cleanup:
  free(toks);
  free(lens);
  return st;
}

t3d_status t3d_tokenizer_new_from_file(const char *path, const t3d_tokenizer_params *p, t3d_tokenizer **out)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  t3d_status st;
  if (out) *out = NULL;
  if (!path) return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer: vocabulary path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return t3d_error(T3D_ERR_IO, "%s: cannot open the vocabulary: %s", path, strerror(errno));
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? 2 * cap : 1 << 16;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        st = t3d_error(T3D_ERR_NOMEM, "%s: out of memory reading the vocabulary", path);
        goto cleanup;
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    st = t3d_error(T3D_ERR_IO, "%s: read error: %s", path, strerror(errno));
    goto cleanup;
  }
  st = t3d_tokenizer_new_from_vocab_text(buf, len, p, out);
  if (st != T3D_OK) t3d_error_prefix("%s: ", path);
cleanup:
  fclose(f);
  free(buf);
  return st;
}

size_t t3d_tokenizer_vocab_size(const t3d_tokenizer *t) { return t ? t->n_tokens : 0; }
int t3d_tokenizer_max_length(const t3d_tokenizer *t) { return t ? t->p.max_length : 0; }
int32_t t3d_tokenizer_pad_id(const t3d_tokenizer *t) { return t ? t->special_id[SP_PAD] : -1; }

int32_t t3d_tokenizer_token_to_id(const t3d_tokenizer *t, const char *token)
{
  if (!t || !token) return -1;
  return vocab_lookup(t, token, strlen(token), 0);
}

const char *t3d_tokenizer_id_to_token(const t3d_tokenizer *t, int32_t id)
{
  if (!t || id < 0 || (size_t)id >= t->n_tokens) return NULL;
  return t->tokens[id];
}

/* ---- encoding ----------------------------------------------------------------------------- */

/* WordpieceTokenizer.tokenize for one piece: greedy longest match, "##" continuations, the
 * whole piece [UNK] when any part has no match or it is longer than max_input_chars_per_word. */
static int wordpiece(const t3d_tokenizer *t, scratch *s, const uint32_t *cp, size_t n)
{
  if (n == 0) return 0;
  if (n > (size_t)t->p.max_input_chars_per_word) return cp_push(&s->ids, (uint32_t)t->special_id[SP_UNK]);
  if (s->utf8_cap < 4 * n) {
    char *u = realloc(s->utf8, 4 * n);
    if (!u) return -1;
    s->utf8 = u;
    s->utf8_cap = 4 * n;
  }
  if (s->offs_cap < n + 1) {
    size_t *o = realloc(s->offs, (n + 1) * sizeof *o);
    if (!o) return -1;
    s->offs = o;
    s->offs_cap = n + 1;
  }
  size_t b = 0;
  for (size_t i = 0; i < n; i++) {
    s->offs[i] = b;
    b += utf8_put(cp[i], s->utf8 + b);
  }
  s->offs[n] = b;

  size_t first = s->ids.n, start = 0;
  while (start < n) {
    int32_t id = -1;
    size_t end = n;
    for (; end > start; end--) {
      id = vocab_lookup(t, s->utf8 + s->offs[start], s->offs[end] - s->offs[start], start > 0);
      if (id >= 0) break;
    }
    if (id < 0) {
      s->ids.n = first;
      return cp_push(&s->ids, (uint32_t)t->special_id[SP_UNK]);
    }
    if (cp_push(&s->ids, (uint32_t)id)) return -1;
    start = end;
  }
  return 0;
}

/* One whitespace-delimited word of the cleaned text: NFC, never_split check, accent stripping,
 * punctuation split, WordPiece (BasicTokenizer.tokenize's loop body, then the WordPiece pass). */
static int encode_word(const t3d_tokenizer *t, scratch *s, const uint32_t *w, size_t n)
{
  /* Below U+0300 nothing composes (NFC is the identity); below U+00C0 nothing decomposes. */
  uint32_t top = 0;
  for (size_t i = 0; i < n; i++)
    if (w[i] > top) top = w[i];
  if (top >= 0x300) {
    if (nfc(w, n, &s->norm)) return -1;
    w = s->norm.v;
    n = s->norm.n;
  }
  for (int k = 0; k < SP_COUNT; k++) { /* never_split: all special tokens */
    if (t->special_id[k] >= 0 && t->special_len[k] == n && memcmp(t->special_cp[k], w, n * sizeof *w) == 0)
      return wordpiece(t, s, w, n);
  }
  if (t->strip && top >= 0xC0) {
    cpbuf *d = &s->strip;
    d->n = 0;
    if (nfd_append(w, n, d)) return -1;
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++)
      if (uc_class(d->v[i]) != T3D_UC_MN) d->v[k++] = d->v[i];
    d->n = k;
    w = d->v;
    n = d->n;
  }
  int rc = 0;
  size_t run = 0; /* start of the current run of non-punctuation */
  for (size_t i = 0; i <= n && rc == 0; i++) {
    if (i == n || uc_class(w[i]) == T3D_UC_PUNCT) {
      rc = wordpiece(t, s, w + run, i - run);
      if (rc == 0 && i < n) rc = wordpiece(t, s, w + i, 1);
      run = i + 1;
    }
  }
  return rc;
}

/* BasicTokenizer on one stretch of (already lowered) text between special tokens. */
static int encode_segment(const t3d_tokenizer *t, scratch *s, const uint32_t *v, size_t n)
{
  cpbuf *c = &s->clean;
  c->n = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t cp = v[i];
    int k = uc_class(cp);
    if (cp == 0 || cp == REPLACEMENT_CHAR || k == T3D_UC_CONTROL) continue;
    if (k == T3D_UC_SPACE) {
      if (cp_push(c, ' ')) return -1;
    } else if (k == T3D_UC_CJK && t->p.tokenize_chinese_chars) {
      if (cp_reserve(c, 3)) return -1;
      c->v[c->n++] = ' ';
      c->v[c->n++] = cp;
      c->v[c->n++] = ' ';
    } else if (cp_push(c, cp)) {
      return -1;
    }
  }
  size_t i = 0;
  while (i < c->n) {
    while (i < c->n && c->v[i] == ' ') i++;
    size_t start = i;
    while (i < c->n && c->v[i] != ' ') i++;
    if (i > start && encode_word(t, s, c->v + start, i - start)) return -1;
  }
  return 0;
}

/* Length of the special token starting at v[0..n), and which one; 0 when none. */
static size_t special_at(const t3d_tokenizer *t, const uint32_t *v, size_t n, int *which)
{
  for (int k = 0; k < SP_COUNT; k++) {
    size_t len = t->special_len[k];
    if (t->special_id[k] >= 0 && len <= n && v[0] == t->special_cp[k][0] &&
        memcmp(v, t->special_cp[k], len * sizeof *v) == 0) {
      *which = k;
      return len;
    }
  }
  return 0;
}

/* Fills s->ids with the wordpiece ids of the text (no [CLS]/[SEP]). */
static int encode_pieces(const t3d_tokenizer *t, scratch *s, const char *text, size_t len)
{
  if (utf8_decode(text, len, &s->text)) return -1;
  const uint32_t *v = s->text.v;
  size_t n = s->text.n;
  s->seg.n = 0;
  for (size_t i = 0; i < n;) {
    int which;
    size_t sl = special_at(t, v + i, n - i, &which);
    if (sl) {
      if (encode_segment(t, s, s->seg.v, s->seg.n)) return -1;
      s->seg.n = 0;
      if (cp_push(&s->ids, (uint32_t)t->special_id[which])) return -1;
      i += sl;
      continue;
    }
    if (t->p.do_lower_case) {
      uint32_t low[3];
      int k = uc_lower(v[i], low);
      if (cp_reserve(&s->seg, 3)) return -1;
      for (int j = 0; j < k; j++) s->seg.v[s->seg.n++] = low[j];
    } else if (cp_push(&s->seg, v[i])) {
      return -1;
    }
    i++;
  }
  return encode_segment(t, s, s->seg.v, s->seg.n);
}

t3d_status t3d_tokenizer_encode(const t3d_tokenizer *t, const char *text, size_t len, unsigned flags,
                                int32_t *ids, int32_t *attention_mask, size_t capacity, size_t *n_out,
                                size_t *n_wordpieces)
{
  scratch s;
  memset(&s, 0, sizeof s);
  if (n_out) *n_out = 0;
  if (n_wordpieces) *n_wordpieces = 0;
  if (!t || !ids || !n_out || (!text && len))
    return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer_encode: tokenizer, text, ids and n_out must not be NULL");
  size_t max_len = (size_t)t->p.max_length;
  if (capacity < max_len)
    return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer_encode: capacity %zu is below max_length %zu", capacity,
                     max_len);
  if (encode_pieces(t, &s, text, len)) {
    scratch_free(&s);
    return t3d_error(T3D_ERR_NOMEM, "tokenizer_encode: out of memory tokenizing %zu bytes", len);
  }
  int special = !(flags & T3D_TOKENIZE_NO_SPECIAL);
  size_t room = special ? max_len - 2 : max_len;
  size_t keep = s.ids.n < room ? s.ids.n : room;
  size_t k = 0;
  if (special) ids[k++] = t->special_id[SP_CLS];
  for (size_t i = 0; i < keep; i++) ids[k++] = (int32_t)s.ids.v[i];
  if (special) ids[k++] = t->special_id[SP_SEP];
  size_t real = k;
  if (flags & T3D_TOKENIZE_PAD)
    while (k < max_len) ids[k++] = t->special_id[SP_PAD];
  if (attention_mask)
    for (size_t i = 0; i < k; i++) attention_mask[i] = i < real;
  *n_out = k;
  if (n_wordpieces) *n_wordpieces = s.ids.n;
  scratch_free(&s);
  return T3D_OK;
}

t3d_status t3d_tokenizer_decode(const t3d_tokenizer *t, const int32_t *ids, size_t n, char **out)
{
  if (!out) return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer_decode: out is NULL");
  *out = NULL;
  if (!t || (!ids && n)) return t3d_error(T3D_ERR_INVALID_ARG, "tokenizer_decode: tokenizer or ids is NULL");
  size_t total = 1;
  char tmp[32];
  for (size_t i = 0; i < n; i++) {
    const char *tok = t3d_tokenizer_id_to_token(t, ids[i]);
    total += (tok ? strlen(tok) : (size_t)snprintf(tmp, sizeof tmp, "<%d?>", (int)ids[i])) + 1;
  }
  char *buf = malloc(total), *w = buf;
  if (!buf) return t3d_error(T3D_ERR_NOMEM, "tokenizer_decode: out of memory");
  for (size_t i = 0; i < n; i++) {
    const char *tok = t3d_tokenizer_id_to_token(t, ids[i]);
    if (i) *w++ = ' ';
    if (tok) {
      size_t l = strlen(tok);
      memcpy(w, tok, l);
      w += l;
    } else {
      w += snprintf(w, 32, "<%d?>", (int)ids[i]);
    }
  }
  *w = '\0';
  *out = buf;
  return T3D_OK;
}
