# CPU 3-D convolution and transposed convolution
libt3d_la_SOURCES += \
	kernels/cpu/conv.h \
	kernels/cpu/conv.c \
	kernels/cpu/conv_direct.c \
	kernels/cpu/conv_wino.c \
	kernels/cpu/conv_ref.c

check_PROGRAMS += tests/test-conv
tests_test_conv_SOURCES = tests/test-conv.c tests/check.h tests/random-tensor.h
tests_test_conv_LDADD = libt3d.la -lm
TESTS += tests/test-conv

# Per-layer timing of the ResNet-50 convolutions (not a test); see tests/reference/bench_conv.py
noinst_PROGRAMS += tests/bench-conv
tests_bench_conv_SOURCES = tests/bench-conv.c
tests_bench_conv_LDADD = libt3d.la -lm
