# Model file: safetensors read/write and t3d metadata (owned by the model-file work).
libt3d_la_SOURCES += \
	core/model/modelfile.c core/model/modelfile.h core/model/modelfile-internal.h \
	core/model/modelconfig.c core/model/modelconfig.h \
	core/model/modeldefaults.c core/model/modeldefaults.h

t3d_SOURCES += cli/cmd_model_init.c cli/cmd_model_info.c

check_PROGRAMS += tests/test-modelfile tests/test-modelfile-corrupt tests/test-modelconfig tests/fuzz/fuzz-corpus-modelfile
TESTS += tests/test-modelfile tests/test-modelfile-corrupt tests/test-modelconfig tests/fuzz/fuzz-corpus-modelfile \
	tests/test-model-cli.sh tests/test-model-layout.sh
dist_check_SCRIPTS += tests/test-model-cli.sh tests/test-model-layout.sh
tests_test_modelfile_SOURCES = tests/test-modelfile.c tests/check.h
tests_test_modelfile_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_modelfile_LDADD = libt3d.la $(JANSSON_LIBS) -lm
tests_test_modelfile_corrupt_SOURCES = tests/test-modelfile-corrupt.c tests/modelfile-corpus.c \
	tests/modelfile-corpus.h tests/check.h
tests_test_modelfile_corrupt_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_modelfile_corrupt_LDADD = libt3d.la $(JANSSON_LIBS) -lm
tests_test_modelconfig_SOURCES = tests/test-modelconfig.c tests/check.h
tests_test_modelconfig_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_test_modelconfig_LDADD = libt3d.la $(JANSSON_LIBS) -lm
# The fuzz entry point runs over the generated corpus in every build (tests/fuzz/run-corpus.c).
tests_fuzz_fuzz_corpus_modelfile_SOURCES = tests/fuzz/run-corpus.c tests/fuzz/run-corpus.h \
	tests/fuzz/seeds-modelfile.c tests/fuzz/fuzz-modelfile.c \
	tests/modelfile-corpus.c tests/modelfile-corpus.h tests/check.h
tests_fuzz_fuzz_corpus_modelfile_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_fuzz_corpus_modelfile_LDADD = libt3d.la $(JANSSON_LIBS) -lm

if FUZZERS
# See README.md "Fuzzing"; seeds: tests/fuzz/fuzz-corpus-modelfile --write DIR.
noinst_PROGRAMS += tests/fuzz/fuzz-modelfile
tests_fuzz_fuzz_modelfile_SOURCES = tests/fuzz/fuzz-modelfile.c
tests_fuzz_fuzz_modelfile_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_fuzz_modelfile_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_modelfile_LDADD = libt3d.la $(JANSSON_LIBS) -lm
endif
EXTRA_DIST += tests/fuzz/modelfile.dict
