#!/usr/bin/env python3
"""PyTorch side of `t3d bench-ops`: times the same ops at the same shapes on the CPU.

Reads the case list that `t3d bench-ops` wrote (a JSON file: shapes and parameters, one object per
row of its table), runs each with torch.set_num_threads(--threads), one warm-up then --repeat
timed runs, and prints {"torch": "<version>", "threads": N, "ms": {"<name>": median_ms, ...}} as
one JSON line on stdout. Progress and errors go to stderr. It does not judge results (that is
tests/test-ops-parity) and computes no rates (the C side owns the FLOP and byte counts).

Usage: bench_ops.py CASES.json --threads N --repeat N [--budget-s S --min-s S --max-reps N]
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def attention(q, k, v, heads):
    bsz, lq, e = q.shape
    dh = e // heads
    qh = q.view(bsz, lq, heads, dh).transpose(1, 2)
    kh = k.view(bsz, -1, heads, dh).transpose(1, 2)
    vh = v.view(bsz, -1, heads, dh).transpose(1, 2)
    p = torch.softmax(torch.matmul(qh, kh.transpose(-1, -2)) / math.sqrt(dh), dim=-1)
    return torch.matmul(p, vh).transpose(1, 2).reshape(bsz, lq, e)


def make(case):
    """Returns a no-argument callable running the case's op on fresh random inputs."""
    kind = case["kind"]
    shape = case["in"]
    k, s, p = case.get("k", 0), case.get("s", 1), case.get("p", 0)
    r = lambda *sh: torch.randn(*sh)
    if kind == "conv3d":
        x, w, b = r(*shape), r(case["out_c"], shape[1], k, k, k) * 0.05, r(case["out_c"])
        return lambda: F.conv3d(x, w, b, stride=s, padding=p)
    if kind == "conv3d_transpose":
        x, w, b = r(*shape), r(shape[1], case["out_c"], k, k, k) * 0.05, r(case["out_c"])
        return lambda: F.conv_transpose3d(x, w, b, stride=s, padding=p)
    if kind == "maxpool3d":
        x = r(*shape)
        return lambda: F.max_pool3d(x, k, s, p)
    if kind == "add_relu":
        a, b = r(*shape), r(*shape)
        y = torch.empty(*shape)
        return lambda: torch.relu_(torch.add(a, b, out=y))
    if kind == "avgpool3d_global":
        x = r(*shape)
        return lambda: x.mean((2, 3, 4))
    if kind == "resample_trilinear":
        x = r(*shape)
        return lambda: F.interpolate(x, size=case["size"], mode="trilinear", align_corners=False)
    if kind == "argmax":
        x = r(*shape)
        return lambda: x.argmax(1)
    if kind == "linear":
        x, w, b = r(*shape), r(case["out_c"], shape[-1]) * 0.05, r(case["out_c"])
        return lambda: F.linear(x, w, b)
    if kind == "layernorm":
        x, g, b = r(*shape), r(shape[-1]), r(shape[-1])
        return lambda: F.layer_norm(x, (shape[-1],), g, b, 1e-12)
    if kind == "gelu":
        x = r(*shape)
        return lambda: F.gelu(x)
    if kind == "softmax":
        x = r(*shape)
        return lambda: F.softmax(x, dim=-1)
    if kind == "attention":
        q, k_, v = r(*shape), r(*shape), r(*shape)
        return lambda: attention(q, k_, v, case["heads"])
    if kind == "embedding":
        table = r(case["vocab"], case["out_c"])
        ids = torch.randint(0, case["vocab"], tuple(shape))
        return lambda: F.embedding(ids, table)
    raise ValueError("bench_ops.py: unknown kind %r" % kind)


def bench_reps(warm_s, args):
    """The number of timed runs; the same rule as bench_reps in cli/cmd_bench_ops.c."""
    warm_s = max(warm_s, 1e-9)
    if warm_s * args.repeat > args.budget_s:
        return max(1, int(args.budget_s / warm_s))
    if warm_s * args.repeat < args.min_s:
        return min(args.max_reps, max(args.repeat, int(args.min_s / warm_s)))
    return args.repeat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cases")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--budget-s", type=float, default=5.0, help="cap on timed seconds per op")
    ap.add_argument("--min-s", type=float, default=0.25, help="fast ops run until this much is timed")
    ap.add_argument("--max-reps", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.cases) as f:
        cases = json.load(f)
    out = {}
    with torch.no_grad():
        for case in cases:
            fn = make(case)
            t0 = time.perf_counter()
            fn()  # warm-up
            warm = time.perf_counter() - t0
            reps = bench_reps(warm, args)
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
            out[case["name"]] = statistics.median(times)
            if sys.stderr.isatty():
                sys.stderr.write("bench_ops.py: %-28s %10.3f ms\n" % (case["name"], out[case["name"]]))
            del fn
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "ms": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
