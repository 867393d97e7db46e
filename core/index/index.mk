# Case index (core/index): SQLite schema and storage, exact embedding search; the `t3d index`,
# `search`, `similar` and `bench-search` commands; their tests and the embedding fuzz target.
libt3d_la_SOURCES += core/index/index.c core/index/scan.c core/index/index.h core/index/index_internal.h
libt3d_la_CFLAGS += $(SQLITE_CFLAGS)
libt3d_la_LIBADD += $(SQLITE_LIBS)
nobase_pkginclude_HEADERS += core/index/index.h

# t3d index / search / similar / bench-search
t3d_SOURCES += cli/cmd_index.c cli/cmd_search.c cli/cmd_bench_search.c cli/index_cli.h
t3d_CFLAGS += -DT3D_BENCH_FAISS_PY=\"$(abs_top_srcdir)/tools/bench-faiss.py\"
EXTRA_DIST += tools/bench-faiss.py

# The embedding BLOB fuzz entry point over its seeds (and their truncations, bit flips), in every build.
check_PROGRAMS += tests/fuzz/fuzz-corpus-embedding
TESTS += tests/fuzz/fuzz-corpus-embedding
tests_fuzz_fuzz_corpus_embedding_SOURCES = tests/fuzz/run-corpus.c tests/fuzz/run-corpus.h \
	tests/fuzz/seeds-embedding.c tests/fuzz/fuzz-embedding.c tests/check.h
tests_fuzz_fuzz_corpus_embedding_LDADD = libt3d.la -lm
if FUZZERS
noinst_PROGRAMS += tests/fuzz/fuzz-embedding
tests_fuzz_fuzz_embedding_SOURCES = tests/fuzz/fuzz-embedding.c
tests_fuzz_fuzz_embedding_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_embedding_LDADD = libt3d.la -lm
endif

# Library: schema, migration from a real v1 file, faults (newer, corrupt, foreign, read-only,
# full via max_page_count), injection, BLOB checks, RRF, scan kernels against a reference.
check_PROGRAMS += tests/test-index
tests_test_index_SOURCES = tests/test-index.c tests/check.h
tests_test_index_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
tests_test_index_LDADD = libt3d.la $(SQLITE_LIBS) -lm
TESTS += tests/test-index

# Commands end to end: kill -9 and rerun, two indexers at once, XDG path and modes, search
# ranking and injection, similar, newer schema refused, bench-search at tiny n.
dist_check_SCRIPTS += tests/test-index-cli.sh
TESTS += tests/test-index-cli.sh
