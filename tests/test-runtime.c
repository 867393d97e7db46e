/* Unit tests of the core runtime: status/detail, log levels, tensors, f16/bf16, arena. */
#include <stdint.h>
#include <string.h>

#include "core/base/arena.h"
#include "core/base/log.h"
#include "core/base/status.h"
#include "core/base/tensor.h"
#include "tests/check.h"

static void test_status_strings_and_detail(void)
{
  for (int s = 0; s < T3D_STATUS_COUNT; s++)
    CHECK(strcmp(t3d_strerror((t3d_status)s), "unknown status") != 0);
  CHECK(strcmp(t3d_strerror(T3D_STATUS_COUNT), "unknown status") == 0);
  CHECK_INT_EQ(t3d_error(T3D_ERR_FORMAT, "header length %d beyond file", 99), T3D_ERR_FORMAT);
  CHECK(strcmp(t3d_error_detail(), "header length 99 beyond file") == 0);
  t3d_error_prefix("%s: ", "m.safetensors");
  CHECK(strcmp(t3d_error_detail(), "m.safetensors: header length 99 beyond file") == 0);
  t3d_error_clear();
  CHECK(t3d_error_detail()[0] == '\0');
}

static void test_log_level_parsing(void)
{
  t3d_log_level l = T3D_LOG_SILENT;
  CHECK(t3d_log_parse_level("debug", &l) == 0 && l == T3D_LOG_DEBUG);
  CHECK(t3d_log_parse_level("WARNING", &l) == 0 && l == T3D_LOG_WARN);
  CHECK(t3d_log_parse_level("error", &l) == 0 && l == T3D_LOG_ERROR);
  CHECK(t3d_log_parse_level("loud", &l) != 0);
  t3d_log_set_level(T3D_LOG_ERROR);
  CHECK_INT_EQ(t3d_log_get_level(), T3D_LOG_ERROR);
  T3D_INFO("this info line must be filtered out");
}

static void test_tensor_new_view_and_sizes(void)
{
  int64_t shape[5] = {1, 2, 3, 4, 5};
  t3d_tensor *t = NULL;
  char buf[64];
  t3d_dtype d;
  CHECK_STATUS(t3d_tensor_new(&t, T3D_F32, 5, shape), T3D_OK);
  CHECK_INT_EQ(t3d_tensor_numel(t), 120);
  CHECK_INT_EQ(t3d_tensor_nbytes(t), 480);
  CHECK(((uintptr_t)t->data % T3D_ALIGN) == 0);
  CHECK(((float *)t->data)[119] == 0.0f);
  CHECK(strcmp(t3d_tensor_describe(t, buf, sizeof buf), "f32[1,2,3,4,5]") == 0);
  t3d_tensor_free(t);
  t3d_tensor_free(NULL);

  CHECK_STATUS(t3d_tensor_new(&t, T3D_F32, 6, shape), T3D_ERR_INVALID_ARG);
  CHECK(t == NULL);
  {
    int64_t huge[3] = {INT64_C(1) << 40, INT64_C(1) << 40, 16};
    CHECK_STATUS(t3d_tensor_new(&t, T3D_F32, 3, huge), T3D_ERR_NOMEM);
  }
  {
    int64_t neg[2] = {3, -1};
    CHECK_STATUS(t3d_tensor_new(&t, T3D_U8, 2, neg), T3D_ERR_NOMEM);
  }
  {
    float data[6] = {0};
    int64_t s2[2] = {2, 3};
    t3d_tensor v = t3d_tensor_view(T3D_F32, 2, s2, data);
    CHECK(!v.owned && v.data == data && t3d_tensor_numel(&v) == 6);
  }
  CHECK(t3d_dtype_from_name("BF16", &d) && d == T3D_BF16);
  CHECK(!t3d_dtype_from_name("F64", &d));
  CHECK_INT_EQ(t3d_dtype_size(T3D_U8), 1);
  CHECK_INT_EQ(t3d_dtype_size(T3D_BF16), 2);
}

static void test_half_conversions_round_trip(void)
{
  static const float exact[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, 0.333251953125f};
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    CHECK_NEAR(t3d_f16_to_f32(t3d_f32_to_f16(exact[i])), exact[i], 0);
    CHECK_NEAR(t3d_bf16_to_f32(t3d_f32_to_bf16(exact[i])), exact[i], fabs(exact[i]) / 128);
  }
  CHECK_INT_EQ(t3d_f32_to_f16(1.0f), 0x3c00);
  CHECK_INT_EQ(t3d_f32_to_f16(65520.0f), 0x7c00); /* rounds to +inf */
  CHECK_INT_EQ(t3d_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
  CHECK_INT_EQ(t3d_f32_to_bf16(1.0f), 0x3f80);
  CHECK(isnan(t3d_f16_to_f32(t3d_f32_to_f16(NAN))));
  CHECK(isnan(t3d_bf16_to_f32(t3d_f32_to_bf16(NAN))));
}

static void test_arena_alignment_and_exhaustion(void)
{
  t3d_arena *a = NULL;
  t3d_tensor t;
  int64_t shape[2] = {4, 4};
  size_t mark;
  CHECK_STATUS(t3d_arena_create(&a, 1000), T3D_OK);
  CHECK_INT_EQ(t3d_arena_capacity(a), 1024);
  {
    void *p1 = t3d_arena_alloc(a, 3);
    void *p2 = t3d_arena_alloc(a, 100);
    CHECK(p1 && p2 && ((uintptr_t)p2 % T3D_ALIGN) == 0);
    CHECK_INT_EQ((char *)p2 - (char *)p1, 64);
  }
  mark = t3d_arena_mark(a);
  CHECK_STATUS(t3d_arena_tensor(a, &t, T3D_F32, 2, shape), T3D_OK);
  CHECK(t3d_arena_alloc(a, 4096) == NULL);
  CHECK(strstr(t3d_error_detail(), "arena exhausted") != NULL);
  t3d_arena_reset_to(a, mark);
  CHECK_INT_EQ(t3d_arena_used(a), mark);
  CHECK_INT_EQ(t3d_arena_high_water(a), 256);
  t3d_arena_reset(a);
  CHECK_INT_EQ(t3d_arena_used(a), 0);
  t3d_arena_free(a);
  t3d_arena_free(NULL);
}

int main(void)
{
  test_status_strings_and_detail();
  test_log_level_parsing();
  test_tensor_new_view_and_sizes();
  test_half_conversions_round_trip();
  test_arena_alignment_and_exhaustion();
  return check_finish("test-runtime");
}
