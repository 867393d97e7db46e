# Vision encoder, segmentation decoder, model load and analyze
libt3d_la_SOURCES += core/model/vision.c core/model/vision.h core/model/model.c core/model/model.h

# Parity with MONAI's ResNet and our PyTorch decoder/heads (skips without torch/monai)
check_PROGRAMS += tests/vision-parity-tool
tests_vision_parity_tool_SOURCES = tests/vision-parity-tool.c tests/parity-compare.h
tests_vision_parity_tool_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_vision_parity_tool_LDADD = libt3d.la $(JANSSON_LIBS) -lm
dist_check_SCRIPTS += tests/test-vision-parity.sh
TESTS += tests/test-vision-parity.sh
EXTRA_DIST += tests/reference/t3d_reference.py

# t3d bench: t3d-r50 vision rows next to PyTorch (tests/reference/t3d_reference.py)
t3d_SOURCES += cli/cmd_bench.c
t3d_CFLAGS += -DT3D_REFERENCE_PY=\"$(abs_top_srcdir)/tests/reference/t3d_reference.py\" \
	-DT3D_PYTHON_DEFAULT=\"$(T3D_PYTHON)\"
t3d_LDADD += -lpthread

# t3d analyze SERIES_DIR
t3d_SOURCES += cli/cmd_analyze.c
t3d_CFLAGS += -DT3D_BUILD_MODEL=\"$(abs_top_srcdir)/models/t3d-tiny.safetensors\"
dist_check_SCRIPTS += tests/test-analyze-cli.sh
TESTS += tests/test-analyze-cli.sh

check_PROGRAMS += tests/test-model-api
tests_test_model_api_SOURCES = tests/test-model-api.c tests/check.h
tests_test_model_api_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_model_api_LDADD = libt3d.la $(JANSSON_LIBS) -lm
TESTS += tests/test-model-api
dist_check_SCRIPTS += tests/test-bench-cli.sh
TESTS += tests/test-bench-cli.sh
