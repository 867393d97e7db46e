/* libFuzzer target for the tokenizer's two parsers of untrusted bytes: report text (encode, both
 * cased and uncased) and vocabulary text. Built only with --enable-fuzzers (CC=clang). Not a
 * correctness test: tests/test-tokenizer-parity.sh checks the ids. */
#include <stddef.h>
#include <stdint.h>

#include "core/model/tokenizer.h"

static const char *const VOCAB[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##a", "é", "##é",
                                    "右", "lung", "##s", ".", "[", "]", "ᄒ", "##ᅡ", "##ᆫ"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static t3d_tokenizer *tok[2];
  if (!tok[0]) {
    t3d_tokenizer_params p = t3d_tokenizer_default_params();
    p.max_length = 64;
    p.max_input_chars_per_word = 20;
    t3d_tokenizer_new_from_vocab(VOCAB, sizeof VOCAB / sizeof VOCAB[0], &p, &tok[0]);
    p.do_lower_case = 0;
    t3d_tokenizer_new_from_vocab(VOCAB, sizeof VOCAB / sizeof VOCAB[0], &p, &tok[1]);
  }
  int32_t ids[64], mask[64];
  size_t n;
  for (int k = 0; k < 2; k++)
    if (tok[k]) t3d_tokenizer_encode(tok[k], (const char *)data, size, T3D_TOKENIZE_PAD, ids, mask, 64, &n, NULL);
  t3d_tokenizer_params p = t3d_tokenizer_default_params();
  p.max_length = 64;
  t3d_tokenizer *v = NULL;
  if (t3d_tokenizer_new_from_vocab_text((const char *)data, size, &p, &v) == T3D_OK)
    t3d_tokenizer_encode(v, (const char *)data, size, 0, ids, mask, 64, &n, NULL);
  t3d_tokenizer_free(v);
  return 0;
}
