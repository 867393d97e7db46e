/* Builds the corrupted-model-file corpus: one case per malformation the reader must refuse,
 * plus valid edge cases. Test code only; headers are written with ' for " and ` for \"
 * to keep them readable. */
#include "tests/modelfile-corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model/modelfile.h"

#define META "'__metadata__':{'t3d.format_version':'1'}"
#define W24 "'w':{'dtype':'F32','shape':[2,3],'data_offsets':[0,24]}"

typedef struct {
  mf_case *v;
  size_t n, cap;
  bool failed;
} list;

static mf_case *push(list *l, const char *name, int want, const char *expect)
{
  mf_case *c;
  if (l->failed)
    return NULL;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    mf_case *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->failed = true;
      return NULL;
    }
    l->v = v;
    l->cap = cap;
  }
  c = &l->v[l->n++];
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", name);
  c->want = want;
  c->expect = expect;
  return c;
}

/* 8-byte length + header (quotes translated) + data_len bytes of a ramp. */
static void add_header(list *l, const char *name, int want, const char *expect, const char *header, size_t data_len)
{
  mf_case *c = push(l, name, want, expect);
  size_t hlen = strlen(header), j = 0;
  if (!c)
    return;
  for (size_t i = 0; header[i]; i++)
    hlen += header[i] == '`'; /* ` becomes the two bytes \" */
  c->len = 8 + hlen + data_len;
  c->bytes = malloc(c->len);
  if (!c->bytes) {
    l->failed = true;
    return;
  }
  for (int i = 0; i < 8; i++)
    c->bytes[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
  for (size_t i = 0; header[i]; i++) {
    if (header[i] == '`') {
      c->bytes[8 + j++] = '\\';
      c->bytes[8 + j++] = '"';
    } else {
      c->bytes[8 + j++] = header[i] == '\'' ? '"' : (uint8_t)header[i];
    }
  }
  for (size_t i = 0; i < data_len; i++)
    c->bytes[8 + hlen + i] = (uint8_t)i;
}

static void add_raw(list *l, const char *name, int want, const char *expect, const uint8_t *bytes, size_t len)
{
  mf_case *c = push(l, name, want, expect);
  if (!c)
    return;
  c->bytes = malloc(len ? len : 1);
  if (!c->bytes) {
    l->failed = true;
    return;
  }
  if (len)
    memcpy(c->bytes, bytes, len);
  c->len = len;
}

/* ---- a complete micro model, via the real writer ----------------------------------------- */

enum { MICRO_VALID, MICRO_MISSING, MICRO_WRONG_SHAPE, MICRO_VOCAB, MICRO_CLASSES, MICRO_INT_DTYPE };

static bool read_whole(const char *path, uint8_t **bytes, size_t *len)
{
  FILE *f = fopen(path, "rb");
  long size;
  bool ok = false;
  *bytes = NULL;
  if (!f)
    return false;
  if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    *bytes = malloc((size_t)size + 1);
    ok = *bytes && fread(*bytes, 1, (size_t)size, f) == (size_t)size;
    *len = (size_t)size;
  }
  fclose(f);
  if (!ok) {
    free(*bytes);
    *bytes = NULL;
  }
  return ok;
}

static bool micro_model(int variant, uint8_t **bytes, size_t *len)
{
  t3d_model_config cfg;
  t3d_tensor_spec *specs = NULL;
  size_t n = 0;
  t3d_modelfile_writer *w = NULL;
  json_t *cj = NULL, *vocab = NULL, *classes = NULL, *findings = NULL;
  float *buf = NULL;
  char path[] = "/tmp/t3d-corpus-XXXXXX";
  int fd = -1;
  bool ok = false;

  *bytes = NULL;
  if (t3d_model_config_builtin(&cfg, "t3d-tiny") != T3D_OK)
    goto cleanup;
  for (int i = 0; i < T3D_RESNET_STAGES; i++)
    cfg.vision.widths[i] = 2;
  cfg.text = (t3d_text_config){8, 4, 1, 2, 8, 8, 2, 1e-12, true, true};
  cfg.projection.dim = 4;
  cfg.projection.hidden = 4;
  cfg.segmentation.classes = 3;
  for (int i = 0; i < T3D_SEG_BLOCKS; i++)
    cfg.segmentation.decoder_widths[i] = 2;
  snprintf(cfg.name, sizeof cfg.name, "micro");
  if (t3d_model_config_tensors(&cfg, &specs, &n) != T3D_OK || t3d_modelfile_writer_new(&w) != T3D_OK ||
      t3d_model_config_to_json(&cfg, &cj) != T3D_OK)
    goto cleanup;
  vocab = json_pack("[s,s,s,s,s,s,s,s]", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "lung", "liver", "##s");
  if (variant == MICRO_VOCAB)
    json_array_remove(vocab, 7);
  classes = json_pack("[s,s,s]", "background", "liver", "lesion");
  if (variant == MICRO_CLASSES)
    json_array_append_new(classes, json_string("spleen"));
  findings = json_pack("[{s:s,s:s,s:s}]", "name", "liver lesion", "positive", "a liver lesion", "negative",
                       "a normal liver");
  if (!vocab || !classes || !findings || t3d_modelfile_writer_set_json(w, "t3d.config", cj) != T3D_OK ||
      t3d_modelfile_writer_set_json(w, "t3d.vocab", vocab) != T3D_OK ||
      t3d_modelfile_writer_set_json(w, "t3d.classes", classes) != T3D_OK ||
      t3d_modelfile_writer_set_json(w, "t3d.findings", findings) != T3D_OK)
    goto cleanup;
  for (size_t i = 0; i < n; i++) {
    t3d_tensor t;
    int64_t numel = 1;
    if (variant == MICRO_MISSING && strcmp(specs[i].name, "vision.layer2.0.conv1.weight") == 0)
      continue;
    if (variant == MICRO_WRONG_SHAPE && strcmp(specs[i].name, "text.embeddings.word_embeddings.weight") == 0)
      specs[i].shape[1] = 5;
    for (int d = 0; d < specs[i].ndim; d++)
      numel *= specs[i].shape[d];
    free(buf);
    buf = malloc((size_t)numel * sizeof *buf);
    if (!buf)
      goto cleanup;
    t3d_tensor_spec_init(&specs[i], &cfg, 7, buf);
    t = t3d_tensor_view(variant == MICRO_INT_DTYPE && strcmp(specs[i].name, "logit_scale") == 0 ? T3D_I32 : T3D_F32,
                        specs[i].ndim, specs[i].shape, buf);
    if (t3d_modelfile_writer_add(w, specs[i].name, &t, true) != T3D_OK)
      goto cleanup;
  }
  fd = mkstemp(path);
  if (fd < 0)
    goto cleanup;
  if (t3d_modelfile_writer_write(w, path) != T3D_OK) {
    fprintf(stderr, "corpus: %s\n", t3d_error_detail());
    goto cleanup;
  }
  ok = read_whole(path, bytes, len);

cleanup:
  if (fd >= 0) {
    close(fd);
    unlink(path);
  }
  free(buf);
  free(specs);
  json_decref(cj);
  json_decref(vocab);
  json_decref(classes);
  json_decref(findings);
  t3d_modelfile_writer_free(w);
  return ok;
}

bool mf_corpus_valid_model(uint8_t **bytes, size_t *len) { return micro_model(MICRO_VALID, bytes, len); }

static void add_micro(list *l, const char *name, int variant, int want, const char *expect, bool check)
{
  mf_case *c = push(l, name, want, expect);
  if (!c)
    return;
  c->check_model = check;
  if (!micro_model(variant, &c->bytes, &c->len)) {
    fprintf(stderr, "corpus: cannot build micro model %s\n", name);
    l->failed = true;
  }
}

/* ---- the corpus -------------------------------------------------------------------------- */

size_t mf_corpus_build(mf_case **cases)
{
  list l = {0};
  uint8_t raw[4096];
  uint64_t s = 0x12345678u;
  char *big = NULL;
  const int F = T3D_ERR_FORMAT, U = T3D_ERR_UNSUPPORTED;

  /* file framing */
  add_raw(&l, "empty-file", F, "shorter than the 8-byte header length", raw, 0);
  add_raw(&l, "five-bytes", F, "shorter than the 8-byte header length", (const uint8_t *)"\x10\0\0\0\0", 5);
  add_raw(&l, "length-beyond-file", F, "runs beyond the end of the file",
          (const uint8_t *)"\xe8\x03\0\0\0\0\0\0{}", 10);
  add_raw(&l, "huge-header-length", F, "runs beyond the end of the file",
          (const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
  for (size_t i = 0; i < sizeof raw; i++) { /* xorshift garbage */
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    raw[i] = (uint8_t)s;
  }
  add_raw(&l, "random-garbage", F, "runs beyond the end of the file", raw, sizeof raw);
  raw[0] = 200, memset(raw + 1, 0, 7);
  add_raw(&l, "garbage-header", F, "header is not valid JSON", raw, sizeof raw);

  /* header JSON */
  add_header(&l, "zero-length-header", F, "header is not valid JSON", "", 16);
  add_header(&l, "truncated-json", F, "header is not valid JSON: ", "{'w':{'dtype':", 0);
  add_header(&l, "json-error-position", F, "line 2, column", "{\n 'a' 1}", 0);
  add_header(&l, "nul-in-header", F, "header is not valid JSON", "{'w\\u0000':1}", 0);
  add_header(&l, "header-is-array", F, "header must be a JSON object", "[1,2]", 0);
  add_header(&l, "duplicate-tensor", F, "duplicate", "{" META "," W24 "," W24 "}", 24);
  add_header(&l, "duplicate-meta-key", F, "duplicate",
             "{'__metadata__':{'t3d.format_version':'1','t3d.format_version':'1'}}", 0);
  big = malloc(200001);
  if (big) {
    memset(big, '[', 100000);
    memset(big + 100000, ']', 100000);
    big[200000] = 0;
    add_header(&l, "deep-nesting", F, "header is not valid JSON", big, 0);
    strcpy(big, "{" META ",'");
    memset(big + strlen(big), 'n', 300);
    strcpy(big + strlen(META) + 3 + 300, "':{'dtype':'U8','shape':[1],'data_offsets':[0,1]}}");
    add_header(&l, "long-tensor-name", F, "names must be 1..255 bytes", big, 1);
    free(big);
  }

  /* tensor entries */
  add_header(&l, "empty-tensor-name", F, "names must be 1..255 bytes",
             "{" META ",'':{'dtype':'U8','shape':[1],'data_offsets':[0,1]}}", 1);
  add_header(&l, "entry-not-object", F, "tensor w: entry must be an object", "{" META ",'w':[1]}", 0);
  add_header(&l, "missing-dtype", F, "tensor w: missing \"dtype\"",
             "{" META ",'w':{'shape':[2],'data_offsets':[0,8]}}", 8);
  add_header(&l, "missing-shape", F, "tensor w: missing \"shape\"",
             "{" META ",'w':{'dtype':'F32','data_offsets':[0,8]}}", 8);
  add_header(&l, "missing-offsets", F, "tensor w: missing \"data_offsets\"",
             "{" META ",'w':{'dtype':'F32','shape':[2]}}", 8);
  add_header(&l, "dtype-not-string", F, "tensor w: \"dtype\" must be a string",
             "{" META ",'w':{'dtype':4,'shape':[2],'data_offsets':[0,8]}}", 8);
  add_header(&l, "unknown-dtype-f64", U, "dtype \"F64\" is not supported",
             "{" META ",'w':{'dtype':'F64','shape':[2],'data_offsets':[0,16]}}", 16);
  add_header(&l, "unknown-dtype-i64", U, "dtype \"I64\" is not supported",
             "{" META ",'w':{'dtype':'I64','shape':[1],'data_offsets':[0,8]}}", 8);
  add_header(&l, "shape-not-array", F, "tensor w: \"shape\" must be an array",
             "{" META ",'w':{'dtype':'F32','shape':2,'data_offsets':[0,8]}}", 8);
  add_header(&l, "negative-dim", F, "tensor w: shape[1] is -2; dimensions must be integers >= 0",
             "{" META ",'w':{'dtype':'F32','shape':[2,-2],'data_offsets':[0,8]}}", 8);
  add_header(&l, "non-integer-dim", F, "tensor w: shape[0] is 2.5",
             "{" META ",'w':{'dtype':'F32','shape':[2.5],'data_offsets':[0,8]}}", 8);
  add_header(&l, "string-dim", F, "tensor w: shape[0] is \"2\"",
             "{" META ",'w':{'dtype':'F32','shape':['2'],'data_offsets':[0,8]}}", 8);
  add_header(&l, "too-many-dims", F, "shape has 6 dimensions; t3d supports at most 5",
             "{" META ",'w':{'dtype':'U8','shape':[1,1,1,1,1,1],'data_offsets':[0,1]}}", 1);
  add_header(&l, "overflowing-shape", F, "shape overflows",
             "{" META ",'w':{'dtype':'F32','shape':[4294967296,4294967296,16],'data_offsets':[0,0]}}", 0);
  add_header(&l, "size-mismatch", F, "needs 24 bytes but data_offsets [0, 20] span 20",
             "{" META ",'w':{'dtype':'F32','shape':[2,3],'data_offsets':[0,20]}}", 24);
  add_header(&l, "offsets-past-data", F, "data_offsets [8, 32] run past the data section (24 bytes)",
             "{" META ",'w':{'dtype':'F32','shape':[2,3],'data_offsets':[8,32]}}", 24);
  add_header(&l, "begin-after-end", F, "data_offsets begin 8 is after end 4",
             "{" META ",'w':{'dtype':'U8','shape':[4],'data_offsets':[8,4]}}", 16);
  add_header(&l, "negative-offset", F, "must not be negative",
             "{" META ",'w':{'dtype':'U8','shape':[4],'data_offsets':[-4,0]}}", 16);
  add_header(&l, "offsets-wrong-type", F, "\"data_offsets\" must be [begin, end] integers",
             "{" META ",'w':{'dtype':'U8','shape':[4],'data_offsets':['0',4]}}", 16);
  add_header(&l, "offsets-three", F, "\"data_offsets\" must be [begin, end] integers",
             "{" META ",'w':{'dtype':'U8','shape':[4],'data_offsets':[0,4,8]}}", 16);
  add_header(&l, "overlap", F, "overlap in the data section",
             "{" META ",'a':{'dtype':'F32','shape':[4],'data_offsets':[0,16]},"
             "'b':{'dtype':'F32','shape':[4],'data_offsets':[12,28]}}", 32);
  add_header(&l, "overlap-nested", F, "overlap in the data section",
             "{" META ",'a':{'dtype':'U8','shape':[32],'data_offsets':[0,32]},"
             "'b':{'dtype':'U8','shape':[4],'data_offsets':[8,12]}}", 32);
  add_header(&l, "misaligned-offset", F, "data offset 2 is not a multiple of the F32 element size 4",
             "{" META ",'w':{'dtype':'F32','shape':[2],'data_offsets':[2,10]}}", 16);
  add_header(&l, "misaligned-bf16", F, "data offset 1 is not a multiple of the BF16 element size 2",
             "{" META ",'w':{'dtype':'BF16','shape':[2],'data_offsets':[1,5]}}", 16);

  /* metadata */
  add_header(&l, "no-metadata", F, "header has no __metadata__", "{" W24 "}", 24);
  add_header(&l, "metadata-not-object", F, "__metadata__ must be a JSON object", "{'__metadata__':[]}", 0);
  add_header(&l, "metadata-value-number", F, "__metadata__ key \"t3d.format_version\": value must be a string",
             "{'__metadata__':{'t3d.format_version':1}}", 0);
  add_header(&l, "no-format-version", F, "no t3d.format_version", "{'__metadata__':{'other':'x'}}", 0);
  add_header(&l, "format-version-text", F, "t3d.format_version must be a positive integer, got \"one\"",
             "{'__metadata__':{'t3d.format_version':'one'}}", 0);
  add_header(&l, "format-version-zero", F, "t3d.format_version must be a positive integer",
             "{'__metadata__':{'t3d.format_version':'0'}}", 0);
  add_header(&l, "format-version-newer", U, "format version 2 was written by a newer t3d",
             "{'__metadata__':{'t3d.format_version':'2'}}", 0);
  add_header(&l, "config-bad-json", F, "t3d.config is not valid JSON",
             "{'__metadata__':{'t3d.format_version':'1','t3d.config':'{`model`:'}}", 0);
  add_header(&l, "config-not-object", F, "t3d.config: must be a JSON object with a \"model\" key",
             "{'__metadata__':{'t3d.format_version':'1','t3d.config':'[]'}}", 0);
  add_header(&l, "config-missing-model", F, "t3d.config: model: missing",
             "{'__metadata__':{'t3d.format_version':'1','t3d.config':'{}'}}", 0);
  add_header(&l, "config-bad-layers", F, "model.vision.layers[2]: must be an integer 1..64, got -1",
             "{'__metadata__':{'t3d.format_version':'1','t3d.config':'{`model`:{`name`:`x`,`vision`:{`arch`:`resnet`,"
             "`block`:`basic`,`layers`:[1,1,-1,1],`widths`:[1,1,1,1],`in_channels`:1,`conv1_kernel`:7,"
             "`conv1_stride`:2}}}'}}", 0);
  add_header(&l, "vocab-bad-json", F, "t3d.vocab is not valid JSON",
             "{'__metadata__':{'t3d.format_version':'1','t3d.vocab':'[`a`,'}}", 0);
  add_header(&l, "vocab-not-strings", F, "t3d.vocab[1] must be a non-empty string, got 2",
             "{'__metadata__':{'t3d.format_version':'1','t3d.vocab':'[`a`,2]'}}", 0);
  add_header(&l, "vocab-empty-token", F, "t3d.vocab[0] must be a non-empty string",
             "{'__metadata__':{'t3d.format_version':'1','t3d.vocab':'[``]'}}", 0);
  add_header(&l, "vocab-duplicate", F, "t3d.vocab[3] \"b\" repeats t3d.vocab[1]",
             "{'__metadata__':{'t3d.format_version':'1','t3d.vocab':'[`a`,`b`,`c`,`b`]'}}", 0);
  add_header(&l, "classes-duplicate", F, "t3d.classes[1] \"liver\" repeats t3d.classes[0]",
             "{'__metadata__':{'t3d.format_version':'1','t3d.classes':'[`liver`,`liver`]'}}", 0);
  add_header(&l, "vocab-object", F, "t3d.vocab must be a JSON array of strings",
             "{'__metadata__':{'t3d.format_version':'1','t3d.vocab':'{}'}}", 0);
  add_header(&l, "findings-bad-json", F, "t3d.findings is not valid JSON",
             "{'__metadata__':{'t3d.format_version':'1','t3d.findings':'[{'}}", 0);
  add_header(&l, "findings-missing-negative", F, "t3d.findings[0].negative must be a non-empty string",
             "{'__metadata__':{'t3d.format_version':'1','t3d.findings':'[{`name`:`a`,`positive`:`p`}]'}}", 0);
  add_header(&l, "findings-duplicate-name", F, "name \"a\" repeats t3d.findings[0]",
             "{'__metadata__':{'t3d.format_version':'1','t3d.findings':'[{`name`:`a`,`positive`:`p`,`negative`:`n`},"
             "{`name`:`a`,`positive`:`p`,`negative`:`n`}]'}}", 0);
  add_header(&l, "classes-bad-json", F, "t3d.classes is not valid JSON",
             "{'__metadata__':{'t3d.format_version':'1','t3d.classes':'background'}}", 0);
  add_header(&l, "classes-empty", F, "t3d.classes is an empty array",
             "{'__metadata__':{'t3d.format_version':'1','t3d.classes':'[]'}}", 0);

  /* valid edge cases: gaps, empty and scalar tensors, trailing bytes, unknown entry keys */
  add_header(&l, "valid-minimal", 0, "", "{" META "}", 0);
  add_header(&l, "valid-gaps-empty-scalar", 0, "",
             "{" META ",'a':{'dtype':'F32','shape':[2],'data_offsets':[16,24]},"
             "'e':{'dtype':'F32','shape':[0,3],'data_offsets':[20,20]},"
             "'s':{'dtype':'I32','shape':[],'data_offsets':[40,44],'extra':true},"
             "'u':{'dtype':'U8','shape':[3],'data_offsets':[1,4]}}", 64);
  { /* 8+N = 1 mod 4: the data section is misaligned in memory, so views must be copies */
    char h[256];
    int n = snprintf(h, sizeof h, "{" META ",'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                                  "'h':{'dtype':'F16','shape':[3],'data_offsets':[8,14]}}");
    while (n % 4 != 1 && n < 250)
      h[n++] = ' ', h[n] = 0;
    add_header(&l, "valid-misaligned-mapping", 0, "", h, 14);
  }

  /* complete models: structure fine, model check refuses */
  add_micro(&l, "valid-micro-model", MICRO_VALID, 0, "", true);
  add_micro(&l, "model-missing-tensor", MICRO_MISSING, T3D_ERR_NOT_FOUND,
            "tensor vision.layer2.0.conv1.weight missing (expected f32[2,2,3,3,3]", true);
  add_micro(&l, "model-wrong-shape", MICRO_WRONG_SHAPE, T3D_ERR_SHAPE,
            "tensor text.embeddings.word_embeddings.weight is f32[8,5], expected f32[8,4]", true);
  add_micro(&l, "model-int-dtype", MICRO_INT_DTYPE, T3D_ERR_SHAPE, "tensor logit_scale is i32[1], expected f32[1]",
            true);
  add_micro(&l, "model-vocab-size", MICRO_VOCAB, F, "t3d.vocab has 7 tokens but model.text.vocab_size is 8", true);
  add_micro(&l, "model-class-count", MICRO_CLASSES, F, "t3d.classes has 4 names but model.segmentation.classes is 3",
            true);

  /* truncations of a valid model */
  if (!l.failed && l.n > 0) {
    const mf_case *m = NULL;
    size_t hlen = 0;
    uint8_t *copy;
    for (size_t i = 0; i < l.n; i++)
      if (strcmp(l.v[i].name, "valid-micro-model") == 0)
        m = &l.v[i];
    copy = m ? malloc(m->len) : NULL;
    for (int i = 7; i >= 0; i--)
      hlen = copy ? (hlen << 8) | m->bytes[i] : 0;
    if (copy) {
      memcpy(copy, m->bytes, m->len);
      add_raw(&l, "truncated-in-data", F, "run past the data section", copy, m->len - 100);
      add_raw(&l, "truncated-in-header", F, "runs beyond the end of the file", copy, 8 + hlen / 2);
      add_raw(&l, "truncated-to-length", F, "runs beyond the end of the file", copy, 8);
      free(copy);
    } else {
      l.failed = true;
    }
  }

  if (l.failed) {
    fprintf(stderr, "corpus: out of memory or writer failure building the corpus\n");
    mf_corpus_free(l.v, l.n);
    *cases = NULL;
    return 0;
  }
  *cases = l.v;
  return l.n;
}

void mf_corpus_free(mf_case *cases, size_t n)
{
  for (size_t i = 0; cases && i < n; i++)
    free(cases[i].bytes);
  free(cases);
}
