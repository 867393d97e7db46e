# PyTorch parity tests and bench-ops
# test-ops-parity judges every op of kernels/backend.h against fresh PyTorch references that
# tests/reference/ops_reference.py draws on each run; `t3d bench-ops` times the ops against
# PyTorch (tests/reference/bench_ops.py, also installed to pkgdatadir).
check_PROGRAMS += tests/test-ops-parity
tests_test_ops_parity_SOURCES = tests/test-ops-parity.c
tests_test_ops_parity_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_ops_parity_LDADD = libt3d.la $(JANSSON_LIBS) -lm
dist_check_SCRIPTS += tests/test-ops-parity.sh tests/test-bench-ops-quick.sh
TESTS += tests/test-ops-parity.sh tests/test-bench-ops-quick.sh
EXTRA_DIST += tests/reference/ops_reference.py

t3d_SOURCES += cli/cmd_bench_ops.c
# The Python and source tree known at build time; T3D_PYTHON / T3D_SRCDIR in the environment win.
t3d_CFLAGS += -DT3D_BENCH_PYTHON='"$(T3D_PYTHON)"' -DT3D_BENCH_SRCDIR='"$(abs_top_srcdir)"'
pkgdata_DATA += tests/reference/bench_ops.py
EXTRA_DIST += tests/reference/bench_ops.py
