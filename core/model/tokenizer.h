/* WordPiece tokenizer that gives the same ids as Hugging Face transformers' BertTokenizer
 * (the slow, pure-Python one): clean text, CJK spacing, NFC, lowercasing, accent stripping,
 * punctuation splitting, greedy longest-match WordPiece, [CLS] ... [SEP], truncation, padding.
 * Not a trainer, not a general Unicode library, and not for other tokenizer families (BPE,
 * SentencePiece).
 *
 * Input text is UTF-8. Invalid byte sequences cannot occur in HF (it receives Python str);
 * here each one becomes U+FFFD, which BertTokenizer's text cleaning deletes, so "ab\xffcd"
 * tokenizes like "abcd" (as HF does on bytes.decode("utf-8", "replace")). Never an error.
 *
 * Special tokens ([UNK] [SEP] [PAD] [CLS] [MASK]) written in the input text are recognised
 * exactly (case-sensitive), as HF's added-token matching does, and map to their own ids.
 * Known differences from HF, outside what t3d meets: a special token string that is itself
 * lowercase is not found in uppercase text (HF lowers first, then matches), and a mask token
 * absent from the vocabulary is plain text (HF would add it as a new id).
 *
 * Unicode data (categories, lowercase, NFC/NFD) is that of the Python that generated
 * core/model/unicode_tables.h (3.11: Unicode 14.0); HF under another Python may differ on characters
 * assigned since. BertTokenizerFast (Rust) is not the reference: it skips NFC and keeps
 * unassigned and private-use code points, so it differs on such input.
 *
 * Thread safety: a tokenizer is immutable after creation; encode may run on several threads. */
#ifndef T3D_TOKENIZER_H
#define T3D_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct t3d_tokenizer t3d_tokenizer;

/* strip_accents, as HF's tri-state strip_accents=None/True/False. */
typedef enum {
  T3D_STRIP_ACCENTS_FOLLOW_LOWERCASE = -1, /* None: strip exactly when do_lower_case */
  T3D_STRIP_ACCENTS_OFF = 0,               /* False */
  T3D_STRIP_ACCENTS_ON = 1                 /* True */
} t3d_strip_accents;

typedef struct {
  int do_lower_case;            /* 1: uncased vocab (Python str.lower per character) */
  int strip_accents;            /* a t3d_strip_accents value */
  int tokenize_chinese_chars;   /* 1: put spaces around CJK ideographs */
  int max_length;               /* ids per sequence including [CLS] and [SEP]; >= 2 */
  int max_input_chars_per_word; /* longer words (in code points) become [UNK] */
  /* Token strings; each must be in the vocabulary, except mask_token (optional: when
   * absent from the vocabulary it is not treated as special). The strings are copied. */
  const char *unk_token, *cls_token, *sep_token, *pad_token, *mask_token;
} t3d_tokenizer_params;

/* do_lower_case 1, strip_accents FOLLOW_LOWERCASE, tokenize_chinese_chars 1, max_length 256,
 * max_input_chars_per_word 100, "[UNK]" "[CLS]" "[SEP]" "[PAD]" "[MASK]". */
t3d_tokenizer_params t3d_tokenizer_default_params(void);

/* Builds a tokenizer from n token strings (UTF-8); tokens[i] gets id i. A token listed twice
 * keeps the later id (as HF's load_vocab). p NULL means the defaults. *out is owned by the
 * caller (t3d_tokenizer_free). Fails with T3D_ERR_INVALID_ARG on bad params, a missing special
 * token or a non-UTF-8 token. */
t3d_status t3d_tokenizer_new_from_vocab(const char *const *tokens, size_t n,
                                        const t3d_tokenizer_params *p, t3d_tokenizer **out);

/* Same from the text of a vocab.txt: one token per line, line i is id i; lines end with
 * "\n", "\r\n" or "\r" (Python's universal newlines, as HF reads the file). */
t3d_status t3d_tokenizer_new_from_vocab_text(const char *text, size_t len,
                                             const t3d_tokenizer_params *p, t3d_tokenizer **out);

/* Same from a vocab.txt file. */
t3d_status t3d_tokenizer_new_from_file(const char *path, const t3d_tokenizer_params *p,
                                       t3d_tokenizer **out);

void t3d_tokenizer_free(t3d_tokenizer *tok);

size_t t3d_tokenizer_vocab_size(const t3d_tokenizer *tok);
int t3d_tokenizer_max_length(const t3d_tokenizer *tok);
/* Id of a token string, or -1 when it is not in the vocabulary. */
int32_t t3d_tokenizer_token_to_id(const t3d_tokenizer *tok, const char *token);
/* Token string of an id (borrowed, lives as long as tok), or NULL when out of range. */
const char *t3d_tokenizer_id_to_token(const t3d_tokenizer *tok, int32_t id);
int32_t t3d_tokenizer_pad_id(const t3d_tokenizer *tok);

enum {
  T3D_TOKENIZE_PAD = 1u << 0,     /* pad with [PAD] (mask 0) up to max_length */
  T3D_TOKENIZE_NO_SPECIAL = 1u << 1 /* no [CLS]/[SEP]; truncation keeps max_length pieces */
};

/* Encodes len bytes of UTF-8 text (text may be NULL when len is 0) as
 *   [CLS] wordpieces... [SEP], truncated to max_length (the ending [SEP] kept),
 * like HF's tokenizer(text, max_length=max_length, truncation=True[, padding="max_length"]).
 * Writes *n_out ids to ids[] and, when attention_mask is not NULL, 1 per real id and 0 per
 * padding id. capacity (entries of ids and attention_mask) must be >= max_length.
 * *n_wordpieces (may be NULL) gets the number of wordpieces before truncation, so a caller
 * can tell a report was cut. */
t3d_status t3d_tokenizer_encode(const t3d_tokenizer *tok, const char *text, size_t len,
                                unsigned flags, int32_t *ids, int32_t *attention_mask,
                                size_t capacity, size_t *n_out, size_t *n_wordpieces);

/* Debugging: the tokens of ids joined by single spaces ("[CLS] nod ##ule [SEP]"); unknown ids
 * print as "<id?>". *out is a NUL-terminated string owned by the caller (free()). */
t3d_status t3d_tokenizer_decode(const t3d_tokenizer *tok, const int32_t *ids, size_t n, char **out);

#ifdef __cplusplus
}
#endif
#endif
