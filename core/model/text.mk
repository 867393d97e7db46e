# BERT text encoder, projections, zero-shot prompts, converters
libt3d_la_SOURCES += core/model/text.c core/model/text.h
EXTRA_DIST += tools/t3d_safetensors.py tools/convert-bert.py tools/convert-resnet.py tools/t3d-assemble.py \
	tests/reference/text_reference.py tests/reference/converters_check.py

check_PROGRAMS += tests/text-parity-tool
tests_text_parity_tool_SOURCES = tests/text-parity-tool.c tests/parity-compare.h
tests_text_parity_tool_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_text_parity_tool_LDADD = libt3d.la $(JANSSON_LIBS) -lm
TESTS += tests/test-text-parity.sh
dist_check_SCRIPTS += tests/test-text-parity.sh
TESTS += tests/test-converters.sh
dist_check_SCRIPTS += tests/test-converters.sh

# Text encoding speed against HF BertModel (run by hand: tests/bench-text.sh), not a test.
noinst_PROGRAMS += tests/bench-text
tests_bench_text_SOURCES = tests/bench-text.c tests/text-testmodel.c tests/text-testmodel.h
tests_bench_text_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_bench_text_LDADD = libt3d.la $(JANSSON_LIBS) -lm
EXTRA_DIST += tests/bench-text.sh tests/reference/text_bench.py

# Text encoder unit test (no Python): batching/padding invariance, load and argument errors, zero-shot.
check_PROGRAMS += tests/test-text
tests_test_text_SOURCES = tests/test-text.c tests/check.h tests/text-testmodel.c tests/text-testmodel.h
tests_test_text_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_text_LDADD = libt3d.la $(JANSSON_LIBS) -lm
TESTS += tests/test-text
