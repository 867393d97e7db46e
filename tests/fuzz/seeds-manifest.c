/* Seeds for the manifest fuzz target: manifest.jsonl lines as the phantom generator writes
 * them (with and without labels, CRLF, blank lines), labels.json, and broken variants. */
#include <stdio.h>
#include <string.h>

#include "tests/fuzz/run-corpus.h"

const char fuzz_target_name[] = "manifest";
const size_t fuzz_min_seeds = 10;

#define LINE(name)                                                                                            \
  "{\"case\":\"" name "\",\"seed\":1234,\"series\":\"" name "/dicom\",\"labels\":\"" name "/labels.nii.gz\"," \
  "\"report\":\"FINDINGS: 12 mm nodule in the right lower lobe.\\nIMPRESSION: Pulmonary nodule.\","           \
  "\"truth\":{\"pulmonary nodule\":{\"present\":true,\"count\":1,\"size_mm\":12.0,\"lobe\":\"right lower lobe\"}," \
  "\"pleural effusion\":{\"present\":false},\"ascites\":{\"present\":false}},"                                \
  "\"acquisition\":{\"matrix\":[256,256,40],\"spacing_mm\":[1.2,1.2,5],\"orientation\":\"axial\","           \
  "\"storage\":\"s16\"}}"

static const char *const TEXTS[] = {
  LINE("case-00000") "\n",
  LINE("case-00000") "\n" LINE("case-00001") "\n" LINE("case-00002") "\n",
  LINE("case-00000") "\r\n\r\n  \n" LINE("case-00001"),
  "{\"case\":\"a\",\"series\":\"a\",\"report\":\"\",\"truth\":{}}",
  "{\"case\":\"a\",\"series\":\"a/../b\",\"report\":\"\",\"truth\":{}}",
  "{\"case\":\"a\",\"series\":\"/abs\",\"report\":\"\",\"truth\":{\"x\":{\"present\":null}}}",
  LINE("a") "\n" LINE("a") "\n",
  "{\"case\":\"a\",\"series\":\"a\",\"report\":\"\\u00e9\\ud83d\\ude00\",\"truth\":{\"x\":{\"present\":true}}}",
  "{\"classes\": [\"background\",\"body\",\"lung\",\"heart\",\"liver\",\"spleen\",\"kidney\",\"bone\",\"lesion\"]}",
  "{\"classes\": [\"a\",\"a\"]}",
  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
  "",
};

bool fuzz_make_seeds(fuzz_seeds *s)
{
  for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "manifest-%02zu", i);
    if (!fuzz_seeds_add(s, name, TEXTS[i], strlen(TEXTS[i])))
      return false;
  }
  return true;
}
