# CPU bf16 path (kernels/cpu/bf16.h): ISA dispatch, bf16 GEMM kernels, bf16 conv/transpose/linear
libt3d_la_SOURCES += \
	kernels/cpu/bf16.h \
	kernels/cpu/bf16_isa.c \
	kernels/cpu/gemm_bf16.c \
	kernels/cpu/conv_bf16.c
t3d_SOURCES += cli/precision.c

check_PROGRAMS += tests/test-bf16
tests_test_bf16_SOURCES = tests/test-bf16.c tests/check.h tests/random-tensor.h
tests_test_bf16_LDADD = libt3d.la -lm
TESTS += tests/test-bf16

check_PROGRAMS += tests/test-bf16-model
tests_test_bf16_model_SOURCES = tests/test-bf16-model.c tests/check.h
tests_test_bf16_model_LDADD = libt3d.la -lm
TESTS += tests/test-bf16-model

dist_check_SCRIPTS += tests/test-bf16-native-compiled.sh
TESTS += tests/test-bf16-native-compiled.sh

dist_check_SCRIPTS += tests/test-precision-cli.sh
TESTS += tests/test-precision-cli.sh
