# t3d bench: OpenVINO (f32, bf16) and ONNX Runtime rows on an ONNX export of the PyTorch
# reference with t3d's weights (tests/reference/peer_bench.py), and their make check test.
t3d_SOURCES += cli/bench_peers.c cli/bench_peers.h
t3d_CFLAGS += -DT3D_PEER_PY=\"$(abs_top_srcdir)/tests/reference/peer_bench.py\"
EXTRA_DIST += tests/reference/peer_bench.py
dist_check_SCRIPTS += tests/test-bench-peers.sh
TESTS += tests/test-bench-peers.sh
