# CPU backend: op table, checked op wrappers, non-convolution ops
libt3d_la_SOURCES += \
	kernels/cpu/cpu.h kernels/cpu/cpu_simd.h \
	kernels/cpu/backend_cpu.c \
	kernels/cpu/elementwise.c \
	kernels/cpu/pool.c \
	kernels/cpu/linear.c \
	kernels/cpu/gemm.c

check_PROGRAMS += tests/test-cpu-ops
tests_test_cpu_ops_SOURCES = tests/test-cpu-ops.c tests/check.h
tests_test_cpu_ops_LDADD = libt3d.la -lm
TESTS += tests/test-cpu-ops

# Timing of the non-convolution CPU ops at model sizes: built by `make check`, not a test; run by hand.
check_PROGRAMS += tests/bench-cpu-ops
tests_bench_cpu_ops_SOURCES = tests/bench-cpu-ops.c
tests_bench_cpu_ops_LDADD = libt3d.la -lm
