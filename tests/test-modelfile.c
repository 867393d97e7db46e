/* Model file round trips: every dtype and edge shape written and read back bit-exactly, metadata
 * and the t3d keys, name-ordered iteration, require() messages, borrowed vs copied tensors,
 * atomic writes (the target is untouched and no temporary is left when writing fails), and
 * interoperability with Python's safetensors in both directions when T3D_PYTHON has it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/model/modelfile-internal.h"
#include "core/model/modelfile.h"
#include "tests/check.h"

static char dir[] = "/tmp/t3d-modelfile-XXXXXX";

#define CHECK_CONTAINS(hay, needle)                                                              \
  do {                                                                                           \
    const char *h_ = (hay), *n_ = (needle);                                                      \
    check_count++;                                                                               \
    if (!h_ || !strstr(h_, n_)) {                                                                \
      check_failures++;                                                                          \
      fprintf(stderr, "%s:%d: FAIL: expected \"%s\" in \"%s\"\n", __FILE__, __LINE__, n_,        \
              h_ ? h_ : "(null)");                                                               \
    }                                                                                            \
  } while (0)

static char *path_in(const char *name)
{
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
  FILE *f = fopen(path, "rb");
  size_t n;
  if (!f)
    return 0;
  n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

static int count_dir_entries(void)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  if (!d)
    return -1;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

/* A writer holding one tensor of every dtype plus edge shapes, all with known contents. */
typedef struct {
  float f32[2 * 3 * 4];
  uint16_t f16[5], bf16[7];
  int32_t i32[3];
  uint8_t u8[11];
  float scalar;
  float five[1 * 2 * 1 * 2 * 3];
} sample;

static void fill_sample(sample *s)
{
  for (int i = 0; i < 24; i++)
    s->f32[i] = (float)i * 0.5f - 3.0f;
  for (int i = 0; i < 5; i++)
    s->f16[i] = t3d_f32_to_f16((float)i - 2.0f);
  for (int i = 0; i < 7; i++)
    s->bf16[i] = t3d_f32_to_bf16((float)i * 100.0f);
  for (int i = 0; i < 3; i++)
    s->i32[i] = -1000000 * i + 7;
  for (int i = 0; i < 11; i++)
    s->u8[i] = (uint8_t)(250 + i);
  s->scalar = 3.25f;
  for (int i = 0; i < 12; i++)
    s->five[i] = (float)-i;
}

static t3d_modelfile_writer *sample_writer(sample *s)
{
  t3d_modelfile_writer *w = NULL;
  t3d_tensor t;
  json_t *vocab = json_pack("[s,s,s]", "[PAD]", "lung", "##s");
  json_t *classes = json_pack("[s,s]", "background", "liver");
  json_t *findings = json_pack("[{s:s,s:s,s:s}]", "name", "nodule", "positive", "a nodule", "negative", "no nodule");
  CHECK_STATUS(t3d_modelfile_writer_new(&w), T3D_OK);
  /* added out of name order on purpose */
  t = t3d_tensor_view(T3D_U8, 1, (int64_t[]){11}, s->u8);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "z.u8", &t, true), T3D_OK);
  t = t3d_tensor_view(T3D_F32, 3, (int64_t[]){2, 3, 4}, s->f32);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "a.f32", &t, true), T3D_OK);
  t = t3d_tensor_view(T3D_BF16, 1, (int64_t[]){7}, s->bf16);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "c.bf16", &t, true), T3D_OK);
  t = t3d_tensor_view(T3D_F16, 1, (int64_t[]){5}, s->f16);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "b.f16", &t, true), T3D_OK);
  t = t3d_tensor_view(T3D_I32, 1, (int64_t[]){3}, s->i32);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "d.i32", &t, true), T3D_OK);
  t = t3d_tensor_view(T3D_F32, 0, NULL, &s->scalar);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "e.scalar", &t, true), T3D_OK);
  t = t3d_tensor_view(T3D_F32, 2, (int64_t[]){0, 4}, NULL);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "f.empty", &t, true), T3D_OK);
  t = t3d_tensor_view(T3D_F32, 5, (int64_t[]){1, 2, 1, 2, 3}, s->five);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "g.five", &t, true), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "note", "héllo \"quoted\"\n"), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_set_json(w, "t3d.vocab", vocab), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_set_json(w, "t3d.classes", classes), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_set_json(w, "t3d.findings", findings), T3D_OK);
  json_decref(vocab);
  json_decref(classes);
  json_decref(findings);
  return w;
}

static void check_tensor_bytes(const t3d_modelfile *mf, const char *name, t3d_dtype dtype, int ndim,
                               const int64_t *shape, const void *want, size_t nbytes)
{
  const t3d_tensor *t = NULL;
  CHECK_STATUS(t3d_modelfile_require(mf, name, dtype, ndim, shape, &t), T3D_OK);
  if (!t)
    return;
  CHECK_INT_EQ(t3d_tensor_nbytes(t), nbytes);
  CHECK_INT_EQ((uintptr_t)t->data % t3d_dtype_size(dtype), 0);
  CHECK(nbytes == 0 || memcmp(t->data, want, nbytes) == 0);
  CHECK(!t->owned);
}

static void check_sample(const t3d_modelfile *mf, const sample *s)
{
  static const char *const order[] = {"a.f32", "b.f16", "c.bf16", "d.i32", "e.scalar", "f.empty", "g.five", "z.u8"};
  const char *name = NULL, *value = NULL;
  size_t n;
  const char *const *vocab;
  const t3d_finding *f;

  CHECK_INT_EQ(t3d_modelfile_tensor_count(mf), 8);
  /* back to back, largest element first: 24+1+12 f32/i32 values, 5+7 halves, 11 bytes, no gap */
  CHECK_INT_EQ(t3d_modelfile_size(mf) - 8 - t3d_modelfile_header_size(mf), (24 + 3 + 1 + 12) * 4 + 12 * 2 + 11);
  for (size_t i = 0; i < 8; i++) {
    CHECK(t3d_modelfile_tensor_at(mf, i, &name) != NULL);
    CHECK(name && strcmp(name, order[i]) == 0);
  }
  CHECK(t3d_modelfile_tensor_at(mf, 8, &name) == NULL);
  check_tensor_bytes(mf, "a.f32", T3D_F32, 3, (int64_t[]){2, 3, 4}, s->f32, sizeof s->f32);
  check_tensor_bytes(mf, "b.f16", T3D_F16, 1, (int64_t[]){5}, s->f16, sizeof s->f16);
  check_tensor_bytes(mf, "c.bf16", T3D_BF16, 1, (int64_t[]){7}, s->bf16, sizeof s->bf16);
  check_tensor_bytes(mf, "d.i32", T3D_I32, 1, (int64_t[]){3}, s->i32, sizeof s->i32);
  check_tensor_bytes(mf, "e.scalar", T3D_F32, 0, NULL, &s->scalar, 4);
  check_tensor_bytes(mf, "f.empty", T3D_F32, 2, (int64_t[]){0, 4}, NULL, 0);
  check_tensor_bytes(mf, "g.five", T3D_F32, 5, (int64_t[]){1, 2, 1, 2, 3}, s->five, sizeof s->five);
  check_tensor_bytes(mf, "z.u8", T3D_U8, 1, (int64_t[]){11}, s->u8, sizeof s->u8);
  CHECK(t3d_modelfile_get(mf, "absent") == NULL);
  CHECK(t3d_modelfile_get(mf, NULL) == NULL);

  CHECK_INT_EQ(t3d_modelfile_format_version(mf), 1);
  CHECK(strcmp(t3d_modelfile_metadata(mf, "t3d.format_version"), "1") == 0);
  CHECK(strcmp(t3d_modelfile_metadata(mf, "note"), "héllo \"quoted\"\n") == 0);
  CHECK(t3d_modelfile_metadata(mf, "absent") == NULL);
  CHECK_INT_EQ(t3d_modelfile_metadata_count(mf), 5);
  CHECK(strcmp(t3d_modelfile_metadata_at(mf, 0, &value), "note") == 0); /* byte order */
  CHECK(strcmp(t3d_modelfile_metadata_at(mf, 4, &value), "t3d.vocab") == 0);
  CHECK(t3d_modelfile_metadata_at(mf, 5, NULL) == NULL);
  vocab = t3d_modelfile_vocab(mf, &n);
  CHECK_INT_EQ(n, 3);
  CHECK(n == 3 && strcmp(vocab[2], "##s") == 0);
  t3d_modelfile_classes(mf, &n);
  CHECK_INT_EQ(n, 2);
  f = t3d_modelfile_findings(mf, &n);
  CHECK_INT_EQ(n, 1);
  CHECK(n == 1 && strcmp(f[0].name, "nodule") == 0 && strcmp(f[0].negative, "no nodule") == 0);
  CHECK(t3d_modelfile_config(mf) == NULL);
  CHECK(t3d_modelfile_config_json(mf) == NULL);
  CHECK_STATUS(t3d_modelfile_check_model(mf), T3D_ERR_FORMAT);
  CHECK_CONTAINS(t3d_error_detail(), "no t3d.config");
}

static void test_roundtrip(void)
{
  sample s;
  t3d_modelfile_writer *w;
  t3d_modelfile *mf = NULL, *mm = NULL;
  static _Alignas(64) uint8_t bytes[1 << 16];
  size_t len;
  fill_sample(&s);
  w = sample_writer(&s);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("sample.safetensors")), T3D_OK);
  t3d_modelfile_writer_free(w);
  CHECK_STATUS(t3d_modelfile_open(&mf, path_in("sample.safetensors")), T3D_OK);
  if (mf) {
    check_sample(mf, &s);
    CHECK_INT_EQ((8 + t3d_modelfile_header_size(mf)) % 64, 0);
    CHECK(strcmp(t3d_modelfile_path(mf), path_in("sample.safetensors")) == 0);
  }
  /* the memory entry point reads the same bytes the same way */
  len = read_file(path_in("sample.safetensors"), bytes, sizeof bytes);
  CHECK_INT_EQ(len, mf ? t3d_modelfile_size(mf) : 0);
  if (((uintptr_t)bytes % 64) == 0) {
    CHECK_STATUS(t3d_modelfile_open_memory(&mm, bytes, len), T3D_OK);
    if (mm)
      check_sample(mm, &s);
    CHECK(strcmp(mm ? t3d_modelfile_path(mm) : "", "<memory>") == 0);
  }
  t3d_modelfile_close(mm);
  t3d_modelfile_close(mf);
  /* rewriting with the same content gives the same bytes: output is deterministic */
  {
    static uint8_t again[1 << 16];
    w = sample_writer(&s);
    CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("sample2.safetensors")), T3D_OK);
    t3d_modelfile_writer_free(w);
    CHECK_INT_EQ(read_file(path_in("sample2.safetensors"), again, sizeof again), len);
    CHECK(memcmp(bytes, again, len) == 0);
  }
}

static void test_borrowed_and_copied(void)
{
  float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4};
  t3d_modelfile_writer *w = NULL;
  t3d_modelfile *mf = NULL;
  t3d_tensor t;
  const t3d_tensor *ra, *rb;
  CHECK_STATUS(t3d_modelfile_writer_new(&w), T3D_OK);
  t = t3d_tensor_view(T3D_F32, 1, (int64_t[]){4}, a);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "borrowed", &t, false), T3D_OK);
  t.data = b;
  CHECK_STATUS(t3d_modelfile_writer_add(w, "copied", &t, true), T3D_OK);
  a[0] = 10; /* visible: borrowed */
  b[0] = 10; /* not visible: copied at add time */
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("borrow.safetensors")), T3D_OK);
  t3d_modelfile_writer_free(w);
  CHECK_STATUS(t3d_modelfile_open(&mf, path_in("borrow.safetensors")), T3D_OK);
  ra = mf ? t3d_modelfile_get(mf, "borrowed") : NULL;
  rb = mf ? t3d_modelfile_get(mf, "copied") : NULL;
  CHECK(ra && rb);
  if (ra && rb) {
    CHECK_NEAR(((const float *)ra->data)[0], 10.0, 0);
    CHECK_NEAR(((const float *)rb->data)[0], 1.0, 0);
  }
  t3d_modelfile_close(mf);
}

static void test_require_messages(void)
{
  float v[6] = {0};
  uint16_t h[6] = {0};
  t3d_modelfile_writer *w = NULL;
  t3d_modelfile *mf = NULL;
  t3d_tensor t;
  const t3d_tensor *out = (const t3d_tensor *)1;
  CHECK_STATUS(t3d_modelfile_writer_new(&w), T3D_OK);
  t = t3d_tensor_view(T3D_F32, 2, (int64_t[]){2, 3}, v);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "w", &t, true), T3D_OK);
  t = t3d_tensor_view(T3D_F16, 2, (int64_t[]){2, 3}, h);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "h", &t, true), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("req.safetensors")), T3D_OK);
  t3d_modelfile_writer_free(w);
  CHECK_STATUS(t3d_modelfile_open(&mf, path_in("req.safetensors")), T3D_OK);
  if (!mf)
    return;
  CHECK_STATUS(t3d_modelfile_require(mf, "x", T3D_F32, 2, (int64_t[]){2, 3}, &out), T3D_ERR_NOT_FOUND);
  CHECK(out == NULL);
  printf("require: %s\n", t3d_error_detail());
  CHECK_CONTAINS(t3d_error_detail(), "req.safetensors: tensor x missing (expected f32[2,3])");
  CHECK_STATUS(t3d_modelfile_require(mf, "w", T3D_F32, 2, (int64_t[]){3, 2}, NULL), T3D_ERR_SHAPE);
  printf("require: %s\n", t3d_error_detail());
  CHECK_CONTAINS(t3d_error_detail(), "tensor w is f32[2,3], expected f32[3,2]");
  CHECK_STATUS(t3d_modelfile_require(mf, "w", T3D_F32, 3, (int64_t[]){2, 3, 1}, NULL), T3D_ERR_SHAPE);
  CHECK_CONTAINS(t3d_error_detail(), "expected f32[2,3,1]");
  CHECK_STATUS(t3d_modelfile_require(mf, "w", T3D_I32, 2, (int64_t[]){2, 3}, NULL), T3D_ERR_SHAPE);
  CHECK_CONTAINS(t3d_error_detail(), "tensor w is f32[2,3], expected i32[2,3]");
  CHECK_STATUS(t3d_modelfile_require(mf, "h", T3D_F32, 2, (int64_t[]){2, 3}, NULL), T3D_ERR_SHAPE);
  CHECK_STATUS(t3d_modelfile_require(mf, "h", T3D_MODELFILE_ANY_FLOAT, 2, (int64_t[]){2, 3}, &out), T3D_OK);
  CHECK(out == t3d_modelfile_get(mf, "h"));
  CHECK_STATUS(t3d_modelfile_require(mf, "h", T3D_MODELFILE_ANY_FLOAT, 1, (int64_t[]){6}, NULL), T3D_ERR_SHAPE);
  CHECK_CONTAINS(t3d_error_detail(), "tensor h is f16[2,3], expected f32[6] (or f16/bf16)");
  t3d_modelfile_close(mf);
}

static void test_writer_refusals(void)
{
  float v = 1;
  char longname[300];
  t3d_modelfile_writer *w = NULL;
  t3d_tensor t = t3d_tensor_view(T3D_F32, 1, (int64_t[]){1}, &v);
  CHECK_STATUS(t3d_modelfile_writer_new(&w), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "a", &t, true), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "a", &t, true), T3D_ERR_INVALID_ARG);
  CHECK_CONTAINS(t3d_error_detail(), "tensor a added twice");
  CHECK_STATUS(t3d_modelfile_writer_add(w, "", &t, true), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "__metadata__", &t, true), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "bad\xff", &t, true), T3D_ERR_INVALID_ARG);
  CHECK_CONTAINS(t3d_error_detail(), "not valid UTF-8");
  memset(longname, 'x', 299);
  longname[299] = 0;
  CHECK_STATUS(t3d_modelfile_writer_add(w, longname, &t, true), T3D_ERR_INVALID_ARG);
  t.ndim = 6;
  CHECK_STATUS(t3d_modelfile_writer_add(w, "six", &t, true), T3D_ERR_INVALID_ARG);
  t.ndim = 1;
  t.data = NULL;
  CHECK_STATUS(t3d_modelfile_writer_add(w, "nodata", &t, true), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "", "x"), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "bad", "\xff\xfe"), T3D_ERR_INVALID_ARG);

  /* metadata the reader would refuse is refused before anything is written */
  CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "t3d.vocab", "[\"a\","), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("refused.safetensors")), T3D_ERR_FORMAT);
  printf("writer: %s\n", t3d_error_detail());
  CHECK_CONTAINS(t3d_error_detail(), "refused.safetensors: not written: __metadata__ t3d.vocab is not valid JSON");
  CHECK(access(path_in("refused.safetensors"), F_OK) != 0);
  CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "t3d.vocab", "[\"a\"]"), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "t3d.config", "{\"model\":{}}"), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("refused.safetensors")), T3D_ERR_FORMAT);
  CHECK_CONTAINS(t3d_error_detail(), "t3d.config: model.name: missing");
  CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "t3d.config", "{\"model\":{\"name\":\"x\"}}"), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("refused.safetensors")), T3D_ERR_FORMAT);
  CHECK_CONTAINS(t3d_error_detail(), "model.vision: missing");
  CHECK(access(path_in("refused.safetensors"), F_OK) != 0);
  t3d_modelfile_writer_free(w);

  CHECK_STATUS(t3d_modelfile_writer_new(&w), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "t3d.format_version", "2"), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("refused.safetensors")), T3D_ERR_UNSUPPORTED);
  t3d_modelfile_writer_free(w);
  t3d_modelfile_writer_free(NULL);
  t3d_modelfile_close(NULL);
}

static void test_atomic_writes(void)
{
  sample s;
  static uint8_t before[1 << 16], after[1 << 16];
  size_t nbefore, nafter;
  char target[512];
  t3d_modelfile_writer *w;
  t3d_modelfile *mf = NULL;
  int entries;
  float big[4096] = {0};
  t3d_tensor t = t3d_tensor_view(T3D_F32, 1, (int64_t[]){4096}, big);

  snprintf(target, sizeof target, "%s", path_in("target.safetensors"));
  fill_sample(&s);
  w = sample_writer(&s);
  CHECK_STATUS(t3d_modelfile_writer_write(w, target), T3D_OK);
  t3d_modelfile_writer_free(w);
  nbefore = read_file(target, before, sizeof before);
  CHECK(nbefore > 0);
  entries = count_dir_entries();

  /* a full disk part-way through the data: the old file stays, the temporary goes */
  CHECK_STATUS(t3d_modelfile_writer_new(&w), T3D_OK);
  CHECK_STATUS(t3d_modelfile_writer_add(w, "big", &t, false), T3D_OK);
  t3d_modelfile_writer_fail_after(w, 1000, ENOSPC);
  CHECK_STATUS(t3d_modelfile_writer_write(w, target), T3D_ERR_IO);
  printf("atomic: %s\n", t3d_error_detail());
  CHECK_CONTAINS(t3d_error_detail(), target);
  CHECK_CONTAINS(t3d_error_detail(), strerror(ENOSPC));
  nafter = read_file(target, after, sizeof after);
  CHECK_INT_EQ(nafter, nbefore);
  CHECK(memcmp(before, after, nbefore) == 0);
  CHECK_INT_EQ(count_dir_entries(), entries);
  /* failing on the very first byte (the header length) too */
  t3d_modelfile_writer_fail_after(w, 0, EIO);
  CHECK_STATUS(t3d_modelfile_writer_write(w, target), T3D_ERR_IO);
  CHECK_CONTAINS(t3d_error_detail(), strerror(EIO));
  CHECK_INT_EQ(count_dir_entries(), entries);
  CHECK_STATUS(t3d_modelfile_open(&mf, target), T3D_OK); /* still the complete old file */
  if (mf)
    check_sample(mf, &s);
  t3d_modelfile_close(mf);

  /* folders that cannot take the temporary file */
  CHECK_STATUS(t3d_modelfile_writer_write(w, "/proc/t3d-model.safetensors"), T3D_ERR_IO);
  printf("atomic: %s\n", t3d_error_detail());
  CHECK_CONTAINS(t3d_error_detail(), "/proc/t3d-model.safetensors: cannot create a temporary file in /proc");
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("no/such/dir/m.safetensors")), T3D_ERR_IO);
  CHECK_CONTAINS(t3d_error_detail(), strerror(ENOENT));
  /* the target is a folder or a device: refused before anything is written */
  CHECK_INT_EQ(mkdir(path_in("a-folder"), 0755), 0);
  entries = count_dir_entries();
  t3d_modelfile_writer_fail_after(w, SIZE_MAX, 0);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("a-folder")), T3D_ERR_IO);
  printf("atomic: %s\n", t3d_error_detail());
  CHECK_CONTAINS(t3d_error_detail(), "a-folder: exists and is not a regular file");
  CHECK_INT_EQ(count_dir_entries(), entries);
  rmdir(path_in("a-folder"));
  CHECK_STATUS(t3d_modelfile_writer_write(w, "/dev/null"), T3D_ERR_IO);
  CHECK_CONTAINS(t3d_error_detail(), "/dev/null: exists and is not a regular file");
  {
    struct stat sb;
    CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
  }
  /* a symbolic link is replaced by the file (rename semantics), its target left alone */
  CHECK_INT_EQ(symlink("elsewhere", path_in("link")), 0);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("link")), T3D_OK);
  CHECK_STATUS(t3d_modelfile_open(&mf, path_in("link")), T3D_OK);
  CHECK(access(path_in("elsewhere"), F_OK) != 0);
  t3d_modelfile_close(mf);
  mf = NULL;
  /* and a successful overwrite replaces the target */
  CHECK_STATUS(t3d_modelfile_writer_write(w, target), T3D_OK);
  CHECK_STATUS(t3d_modelfile_open(&mf, target), T3D_OK);
  CHECK(mf && t3d_modelfile_tensor_count(mf) == 1 && t3d_modelfile_get(mf, "big"));
  t3d_modelfile_close(mf);
  t3d_modelfile_writer_free(w);
  {
    struct stat sb;
    CHECK_INT_EQ(stat(target, &sb), 0);
    CHECK_INT_EQ(sb.st_mode & 0777, 0644);
  }
}

/* safetensors.torch <-> t3d, both directions, when T3D_PYTHON has the package. */
static void test_python_interop(void)
{
  const char *py = getenv("T3D_PYTHON");
  char cmd[2048];
  const char *from_py = path_in("from-python.safetensors"), *script = path_in("interop.py");
  FILE *f;
  t3d_modelfile *mf = NULL;
  sample s;
  t3d_modelfile_writer *w;

  snprintf(cmd, sizeof cmd, "'%s' -c 'import torch, safetensors.torch' 2>/dev/null", py ? py : "python3");
  if (!py || system(cmd) != 0) {
    printf("interop: skipped (T3D_PYTHON lacks torch + safetensors)\n");
    return;
  }
  f = fopen(script, "w");
  CHECK(f != NULL);
  if (!f)
    return;
  fputs("import sys, torch\n"
        "from safetensors.torch import save_file, load_file, safe_open\n"
        "if sys.argv[1] == 'write':\n"
        "    t = {'f32': torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) * 0.5 - 3,\n"
        "         'f16': torch.arange(5, dtype=torch.float16) - 2,\n"
        "         'bf16': torch.arange(7, dtype=torch.bfloat16) * 100,\n"
        "         'i32': torch.tensor([7, -999993, -1999993], dtype=torch.int32),\n"
        "         'u8': torch.arange(250, 256, dtype=torch.uint8)}\n"
        "    save_file(t, sys.argv[2], metadata={'t3d.format_version': '1', 'who': 'python'})\n"
        "else:\n"
        "    t = load_file(sys.argv[2])\n"
        "    assert torch.equal(t['a.f32'], torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) * 0.5 - 3)\n"
        "    assert torch.equal(t['b.f16'], torch.arange(5, dtype=torch.float16) - 2)\n"
        "    assert torch.equal(t['c.bf16'], torch.arange(7, dtype=torch.bfloat16) * 100)\n"
        "    assert t['d.i32'].tolist() == [7, -999993, -1999993]\n"
        "    assert t['z.u8'].tolist() == [250, 251, 252, 253, 254, 255, 0, 1, 2, 3, 4]\n"
        "    assert t['e.scalar'].shape == () and t['e.scalar'].item() == 3.25\n"
        "    assert t['f.empty'].shape == (0, 4) and t['g.five'].shape == (1, 2, 1, 2, 3)\n"
        "    with safe_open(sys.argv[2], 'pt') as f:\n"
        "        assert f.metadata()['note'] == 'h\\u00e9llo \"quoted\"\\n', f.metadata()\n"
        "    print('python read the t3d file: ok')\n",
        f);
  fclose(f);

  snprintf(cmd, sizeof cmd, "'%s' '%s' write '%s'", py, script, from_py);
  CHECK_INT_EQ(system(cmd), 0);
  CHECK_STATUS(t3d_modelfile_open(&mf, from_py), T3D_OK);
  if (mf) {
    float want[24];
    int32_t i32[3] = {7, -999993, -1999993};
    const t3d_tensor *t;
    for (int i = 0; i < 24; i++)
      want[i] = (float)i * 0.5f - 3.0f;
    check_count++;
    t = t3d_modelfile_get(mf, "f32");
    if (!t || memcmp(t->data, want, sizeof want) != 0) {
      check_failures++;
      fprintf(stderr, "FAIL: f32 from python differs\n");
    }
    t = t3d_modelfile_get(mf, "f16");
    CHECK(t && t->dtype == T3D_F16 && t3d_f16_to_f32(((const uint16_t *)t->data)[4]) == 2.0f);
    t = t3d_modelfile_get(mf, "bf16");
    CHECK(t && t->dtype == T3D_BF16 && t3d_bf16_to_f32(((const uint16_t *)t->data)[6]) == 600.0f);
    t = t3d_modelfile_get(mf, "i32");
    CHECK(t && memcmp(t->data, i32, sizeof i32) == 0);
    t = t3d_modelfile_get(mf, "u8");
    CHECK(t && t->shape[0] == 6 && ((const uint8_t *)t->data)[5] == 255);
    CHECK(strcmp(t3d_modelfile_metadata(mf, "who") ? t3d_modelfile_metadata(mf, "who") : "", "python") == 0);
    /* every view is usable as its type whatever padding python chose */
    for (size_t i = 0; i < t3d_modelfile_tensor_count(mf); i++) {
      const t3d_tensor *x = t3d_modelfile_tensor_at(mf, i, NULL);
      CHECK_INT_EQ((uintptr_t)x->data % t3d_dtype_size(x->dtype), 0);
    }
  }
  t3d_modelfile_close(mf);

  fill_sample(&s);
  w = sample_writer(&s);
  CHECK_STATUS(t3d_modelfile_writer_write(w, path_in("for-python.safetensors")), T3D_OK);
  t3d_modelfile_writer_free(w);
  snprintf(cmd, sizeof cmd, "'%s' '%s' read '%s'", py, script, path_in("for-python.safetensors"));
  CHECK_INT_EQ(system(cmd), 0);
}

static void remove_dir(void)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[1024];
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

/* t3d.findings[i].calibration: {"slope" >= 0, "intercept", optional "auroc" in [0, 1]} loads onto
 * the finding; a negative slope, a missing intercept or an AUROC outside [0, 1] or not a number is
 * a format error naming the finding; no calibration leaves the finding uncalibrated (slope 1,
 * intercept 0, no AUROC). */
static void test_findings_calibration(void)
{
  static const char *const cases[] = {
      "[{\"name\":\"nodule\",\"positive\":\"a\",\"negative\":\"b\",\"calibration\":{\"slope\":0.5,"
      "\"intercept\":-1.25,\"cases\":100,\"auroc\":0.61}},{\"name\":\"cyst\",\"positive\":\"c\",\"negative\":\"d\"}]",
      "[{\"name\":\"nodule\",\"positive\":\"a\",\"negative\":\"b\",\"calibration\":{\"slope\":-0.5,"
      "\"intercept\":0}}]",
      "[{\"name\":\"nodule\",\"positive\":\"a\",\"negative\":\"b\",\"calibration\":{\"slope\":1}}]",
      "[{\"name\":\"nodule\",\"positive\":\"a\",\"negative\":\"b\",\"calibration\":{\"slope\":1,"
      "\"intercept\":0,\"auroc\":1.5}}]",
      "[{\"name\":\"nodule\",\"positive\":\"a\",\"negative\":\"b\",\"calibration\":{\"slope\":1,"
      "\"intercept\":0,\"auroc\":-0.01}}]",
      "[{\"name\":\"nodule\",\"positive\":\"a\",\"negative\":\"b\",\"calibration\":{\"slope\":1,"
      "\"intercept\":0,\"auroc\":\"0.9\"}}]",
  };
  for (int i = 0; i < 6; i++) {
    t3d_modelfile_writer *w = NULL;
    t3d_modelfile *mf = NULL;
    float v = 1;
    t3d_tensor t = t3d_tensor_view(T3D_F32, 1, (int64_t[]){1}, &v);
    CHECK_STATUS(t3d_modelfile_writer_new(&w), T3D_OK);
    CHECK_STATUS(t3d_modelfile_writer_add(w, "x", &t, true), T3D_OK);
    CHECK_STATUS(t3d_modelfile_writer_set_metadata(w, "t3d.findings", cases[i]), T3D_OK);
    /* the writer validates the metadata as the reader does: a bad calibration is never written */
    t3d_status st = t3d_modelfile_writer_write(w, path_in("findings.safetensors"));
    t3d_modelfile_writer_free(w);
    if (i == 0) {
      size_t n = 0;
      CHECK_STATUS(st, T3D_OK);
      CHECK_STATUS(t3d_modelfile_open(&mf, path_in("findings.safetensors")), T3D_OK);
      const t3d_finding *f = mf ? t3d_modelfile_findings(mf, &n) : NULL;
      CHECK_INT_EQ(n, 2);
      CHECK(n == 2 && f[0].calibrated == 1 && f[0].slope == 0.5 && f[0].intercept == -1.25 && f[0].has_auroc && f[0].auroc == 0.61);
      CHECK(n == 2 && f[1].calibrated == 0 && f[1].slope == 1.0 && f[1].intercept == 0.0 && !f[1].has_auroc);
      t3d_modelfile_close(mf);
    } else {
      CHECK_STATUS(st, T3D_ERR_FORMAT);
      CHECK_CONTAINS(t3d_error_detail(), "t3d.findings[0].calibration");
    }
  }
}

int main(void)
{
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_roundtrip();
  test_borrowed_and_copied();
  test_require_messages();
  test_writer_refusals();
  test_atomic_writes();
  test_python_interop();
  test_findings_calibration();
  remove_dir();
  return check_finish("test-modelfile");
}
