/* Every malformed model file is refused with the right status and a message that names the
 * problem, through both the file (mmap) and the memory entry points; valid edge cases open
 * with aligned views of the right bytes. Run under ASan this also proves no crash or leak. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model/modelfile.h"
#include "tests/check.h"
#include "tests/modelfile-corpus.h"

static char tmpdir[] = "/tmp/t3d-corrupt-XXXXXX";

/* Opens (and model-checks when asked) one way; returns the status, detail copied to msg. */
static int try_open(const mf_case *c, const char *path, char *msg, size_t size)
{
  t3d_modelfile *mf = NULL;
  t3d_status st = path ? t3d_modelfile_open(&mf, path) : t3d_modelfile_open_memory(&mf, c->bytes, c->len);
  if (st == T3D_OK && c->check_model)
    st = t3d_modelfile_check_model(mf);
  snprintf(msg, size, "%s", st == T3D_OK ? "" : t3d_error_detail());
  if (mf && c->want == T3D_OK) {
    /* valid: every view is aligned for its dtype and holds the bytes at its file offset */
    size_t data0 = 8;
    for (int i = 7; i >= 0; i--)
      data0 += (size_t)c->bytes[i] << (8 * i);
    for (size_t i = 0; i < t3d_modelfile_tensor_count(mf); i++) {
      const char *name;
      const t3d_tensor *t = t3d_modelfile_tensor_at(mf, i, &name);
      CHECK_INT_EQ((uintptr_t)t->data % t3d_dtype_size(t->dtype), 0);
      if (t3d_tensor_nbytes(t) && c->len > data0 && c->len < 4096) {
        /* find the offset by scanning: tensor bytes are unique ramps in these files */
        const uint8_t *p = t->data;
        bool found = false;
        for (size_t off = data0; off + t3d_tensor_nbytes(t) <= c->len && !found; off++)
          found = memcmp(c->bytes + off, p, t3d_tensor_nbytes(t)) == 0;
        CHECK(found);
      }
    }
  }
  t3d_modelfile_close(mf);
  return (int)st;
}

static void run_case(const mf_case *c)
{
  char path[512], msg_file[1024], msg_mem[1024];
  int fd, st_file, st_mem;
  snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, c->name);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  CHECK_INT_EQ(write(fd, c->bytes, c->len), (long long)c->len);
  close(fd);

  st_file = try_open(c, path, msg_file, sizeof msg_file);
  st_mem = try_open(c, NULL, msg_mem, sizeof msg_mem);
  printf("%-28s %-18s %s\n", c->name, t3d_strerror((t3d_status)st_file), msg_file);
  CHECK_INT_EQ(st_file, c->want);
  CHECK_INT_EQ(st_mem, c->want);
  if (!strstr(msg_file, c->expect) || !strstr(msg_mem, c->expect) || (c->want && !strstr(msg_file, path)) ||
      (c->want && !c->check_model && !strstr(msg_mem, "<memory>"))) {
    check_failures++;
    fprintf(stderr, "FAIL %s: expected \"%s\" in the message\n  file:   %s\n  memory: %s\n", c->name, c->expect,
            msg_file, msg_mem);
  }
  check_count++;
  unlink(path);
}

/* A header length over the 100 MiB cap, in a sparse file large enough to hold it. */
static void run_header_cap(void)
{
  char path[512];
  uint8_t len[8] = {0};
  uint64_t n = (uint64_t)101 << 20;
  t3d_modelfile *mf = NULL;
  int fd;
  snprintf(path, sizeof path, "%s/huge-header.safetensors", tmpdir);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  for (int i = 0; i < 8; i++)
    len[i] = (uint8_t)(n >> (8 * i));
  CHECK_INT_EQ(write(fd, len, 8), 8);
  CHECK_INT_EQ(ftruncate(fd, (off_t)(n + 8)), 0);
  close(fd);
  CHECK_STATUS(t3d_modelfile_open(&mf, path), T3D_ERR_FORMAT);
  printf("%-28s %s\n", "header-over-cap", t3d_error_detail());
  CHECK(strstr(t3d_error_detail(), "exceeds t3d's cap") != NULL);
  CHECK(mf == NULL);
  unlink(path);
}

static void run_not_files(void)
{
  t3d_modelfile *mf = NULL;
  char path[512];
  CHECK_STATUS(t3d_modelfile_open(&mf, tmpdir), T3D_ERR_IO);
  printf("%-28s %s\n", "directory", t3d_error_detail());
  CHECK(strstr(t3d_error_detail(), "not a regular file") != NULL);
  snprintf(path, sizeof path, "%s/absent.safetensors", tmpdir);
  CHECK_STATUS(t3d_modelfile_open(&mf, path), T3D_ERR_NOT_FOUND);
  printf("%-28s %s\n", "absent", t3d_error_detail());
  CHECK(strstr(t3d_error_detail(), "No such file") != NULL);
  CHECK_STATUS(t3d_modelfile_open_memory(&mf, NULL, 0), T3D_ERR_FORMAT);
  CHECK(mf == NULL);
}

int main(void)
{
  mf_case *cases = NULL;
  size_t n, refused = 0;

  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  n = mf_corpus_build(&cases);
  CHECK(n >= 20);
  for (size_t i = 0; i < n; i++) {
    run_case(&cases[i]);
    refused += cases[i].want != T3D_OK;
  }
  printf("%zu corrupted files refused as expected, %zu valid ones opened\n", refused, n - refused);
  CHECK(refused >= 20);
  run_header_cap();
  run_not_files();
  mf_corpus_free(cases, n);
  rmdir(tmpdir);
  return check_finish("test-modelfile-corrupt");
}
