# Case index (core/index): SQLite schema and storage, exact embedding search; the `t3d index`,
# `search`, `similar` and `bench-search` commands; their tests and the embedding fuzz target.
libt3d_la_SOURCES += core/index/index.c core/index/scan.c core/index/index.h
libt3d_la_CFLAGS += $(SQLITE_CFLAGS)
libt3d_la_LIBADD += $(SQLITE_LIBS)
nobase_pkginclude_HEADERS += core/index/index.h

# t3d index / search / similar / bench-search
t3d_SOURCES += cli/cmd_index.c cli/cmd_search.c cli/cmd_bench_search.c cli/index_cli.h
t3d_CFLAGS += -DT3D_BENCH_FAISS_PY=\"$(abs_top_srcdir)/tools/bench-faiss.py\"
EXTRA_DIST += tools/bench-faiss.py
