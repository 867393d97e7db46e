/* Seeds for the tokenizer fuzz target: report text in the scripts the tokenizer treats
 * specially (accents, CJK, Hangul, punctuation, controls), malformed UTF-8 and vocabulary text. */
#include <stdio.h>
#include <string.h>

#include "tests/fuzz/run-corpus.h"

const char fuzz_target_name[] = "tokenizer";
const size_t fuzz_min_seeds = 10;

static const char *const TEXTS[] = {
  "Lungs are clear. No pleural effusion.",
  "RIGHT lower lobe nodule, 8 mm [see image 42].",
  "Caf\xc3\xa9 \xc3\x89T\xc3\x89 na\xc3\xafve r\xc3\xa9sum\xc3\xa9",            /* accents */
  "\xe5\x8f\xb3\xe8\x82\xba\xe4\xb8\x8b\xe5\x8f\xb6 lung",                      /* CJK */
  "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab \xed\x95\x9c\xea\xb5\xad",              /* Hangul jamo, syllables */
  "tab\there\r\nnull\001ctl \xc2\xa0nbsp \xe2\x80\x8bzwsp",
  "\xff\xfe bad \xc3 utf8 \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 surrogate \xc0\xaf overlong",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa lungssssss ##a",
  "[CLS] [SEP] [MASK] [UNK] [PAD] [[[ ]]] ... ,,, !!",
  "\xf0\x9f\xab\x81 emoji \xf4\x8f\xbf\xbf max \xf4\x90\x80\x80 beyond",
  "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nlung\n##s\na\n##a\n.\n",                 /* vocabulary */
  "[PAD]\r\n[UNK]\r\n\r\n\xc3\xa9\n##\xc3\xa9\n[CLS]\n[SEP]\n[UNK]\n",           /* CRLF, duplicate */
  "",
};

bool fuzz_make_seeds(fuzz_seeds *s)
{
  for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "text-%02zu", i);
    if (!fuzz_seeds_add(s, name, TEXTS[i], strlen(TEXTS[i])))
      return false;
  }
  return true;
}
