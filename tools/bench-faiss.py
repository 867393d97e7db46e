#!/usr/bin/env python3
"""FAISS IndexFlatIP beside `t3d bench-search`: reads the same raw float32 vectors, searches the
same queries one at a time at the same thread count, prints one JSON line of timings and writes
the top-k ids (int64, row-major) for t3d to score recall. Not a general FAISS benchmark."""
import json
import sys
import time

try:
    import numpy as np
    import faiss
except ImportError as e:  # t3d prints "FAISS unavailable" and goes on
    print(json.dumps({"error": "import: %s" % e}))
    sys.exit(3)


def main():
    base_path, n, dim, query_path, nq, threads, k, ids_path = sys.argv[1:9]
    n, dim, nq, threads, k = int(n), int(dim), int(nq), int(threads), int(k)
    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    base = np.fromfile(base_path, dtype=np.float32, count=n * dim).reshape(n, dim)
    index = faiss.IndexFlatIP(dim)
    index.add(base)
    load_s = time.perf_counter() - t0
    queries = np.fromfile(query_path, dtype=np.float32, count=nq * dim).reshape(nq, dim)
    ids = np.zeros((nq, k), dtype=np.int64)
    ms = []
    for i in range(nq):
        t = time.perf_counter()
        _, idx = index.search(queries[i:i + 1], k)
        ms.append((time.perf_counter() - t) * 1e3)
        ids[i] = idx[0]
    ids.tofile(ids_path)
    ms.sort()
    print(json.dumps({"version": faiss.__version__, "load_s": load_s, "p50_ms": ms[len(ms) // 2],
                      "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))], "threads": threads}))


if __name__ == "__main__":
    main()
