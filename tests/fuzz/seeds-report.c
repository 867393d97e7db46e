/* Seeds for the report fuzz target: a finding name line plus a similar case's report text
 * (sentences with and without the finding, negations, line breaks, bullets, long and empty
 * sentences, non-ASCII bytes). */
#include <string.h>

#include "tests/fuzz/run-corpus.h"

const char fuzz_target_name[] = "report";
const size_t fuzz_min_seeds = 8;

bool fuzz_make_seeds(fuzz_seeds *s)
{
  static const char *const seeds[] = {
      "pleural effusion\nSmall left pleural effusion. No pneumothorax.",
      "lung nodule\nNo lung nodule. A 6 mm lung nodule in the right upper lobe!",
      "ascites\n- Ascites present\n- liver normal\n* Moderate ascites?",
      "cardiomegaly\n",
      "\nno finding name at all.",
      "x\nx.x.x.x!x?x\n\r\n",
      "renal cyst\nSimple renal cyst, left kidney, 2 cm, without enhancement. Renal cyst in the right kidney.",
      "consolidation\nConsolidation \xc3\xa4 in the lower lobe with air bronchograms and volume loss on the right side "
      "that continues for a long while to test the sentence length limit of three hundred characters which this one "
      "passes by some margin because it keeps going and going with consolidation named again near the end.",
      "emphysema\nEmphysema",
  };
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
    char name[32];
    memcpy(name, "seed-", 5);
    name[5] = (char)('a' + i);
    name[6] = '\0';
    if (!fuzz_seeds_add(s, name, seeds[i], strlen(seeds[i]))) return false;
  }
  return true;
}
