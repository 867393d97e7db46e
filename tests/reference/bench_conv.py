#!/usr/bin/env python3
"""PyTorch timing of the same convolutions as tests/bench-conv.c (MONAI 3D ResNet-50 at
1x1x160x224x224 plus the decoder's kernel-2 stride-2 transposed convs), for comparison.
Not a test. Usage: bench_conv.py [--threads 2] [--reps 3] [--only NAME] [--ours bench-conv.out]
With --ours, prints t3d's ms next to PyTorch's and the ratio torch/t3d (>1: t3d is faster)."""
import argparse
import time

import torch
import torch.nn.functional as F

# name, count, ci, co, d, h, w, k, s, pad, transposed  (same table as tests/bench-conv.c)
LAYERS = [
    ("conv1", 1, 1, 64, 160, 224, 224, 7, 2, 3, False),
    ("l1.b0.conv1", 1, 64, 64, 40, 56, 56, 1, 1, 0, False),
    ("l1.conv2", 3, 64, 64, 40, 56, 56, 3, 1, 1, False),
    ("l1.conv3+ds", 4, 64, 256, 40, 56, 56, 1, 1, 0, False),
    ("l1.conv1", 2, 256, 64, 40, 56, 56, 1, 1, 0, False),
    ("l2.b0.conv1", 1, 256, 128, 40, 56, 56, 1, 1, 0, False),
    ("l2.b0.conv2", 1, 128, 128, 40, 56, 56, 3, 2, 1, False),
    ("l2.conv3", 4, 128, 512, 20, 28, 28, 1, 1, 0, False),
    ("l2.ds", 1, 256, 512, 40, 56, 56, 1, 2, 0, False),
    ("l2.conv1", 3, 512, 128, 20, 28, 28, 1, 1, 0, False),
    ("l2.conv2", 3, 128, 128, 20, 28, 28, 3, 1, 1, False),
    ("l3.b0.conv1", 1, 512, 256, 20, 28, 28, 1, 1, 0, False),
    ("l3.b0.conv2", 1, 256, 256, 20, 28, 28, 3, 2, 1, False),
    ("l3.conv3", 6, 256, 1024, 10, 14, 14, 1, 1, 0, False),
    ("l3.ds", 1, 512, 1024, 20, 28, 28, 1, 2, 0, False),
    ("l3.conv1", 5, 1024, 256, 10, 14, 14, 1, 1, 0, False),
    ("l3.conv2", 5, 256, 256, 10, 14, 14, 3, 1, 1, False),
    ("l4.b0.conv1", 1, 1024, 512, 10, 14, 14, 1, 1, 0, False),
    ("l4.b0.conv2", 1, 512, 512, 10, 14, 14, 3, 2, 1, False),
    ("l4.conv3", 3, 512, 2048, 5, 7, 7, 1, 1, 0, False),
    ("l4.ds", 1, 1024, 2048, 10, 14, 14, 1, 2, 0, False),
    ("l4.conv1", 2, 2048, 512, 5, 7, 7, 1, 1, 0, False),
    ("l4.conv2", 2, 512, 512, 5, 7, 7, 3, 1, 1, False),
    ("up4", 1, 2048, 1024, 5, 7, 7, 2, 2, 0, True),
    ("up3", 1, 1024, 512, 10, 14, 14, 2, 2, 0, True),
    ("up2", 1, 512, 256, 20, 28, 28, 2, 2, 0, True),
    ("up1", 1, 256, 64, 40, 56, 56, 2, 2, 0, True),
]


def read_ours(path):
    ours = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 7 and parts[0] in {l[0] for l in LAYERS}:
                ours[parts[0]] = (float(parts[3]), float(parts[6]))  # wall ms, cpu ms
    return ours


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only")
    ap.add_argument("--ours")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ours = read_ours(a.ours) if a.ours else {}
    print(f"# torch {torch.__version__}, threads {a.threads}, best of {a.reps}; wall ms and process CPU ms")
    hdr = f"{'layer':12s} {'n':>3s} {'torch ms':>9s} {'GFLOP/s':>8s} {'cpu ms':>9s}"
    if ours:
        hdr += f" {'t3d ms':>9s} {'t3d cpu':>9s} {'ratio':>6s} {'cpu rat':>7s}"
    print(hdr)
    tot = [0.0, 0.0, 0.0, 0.0]  # torch wall, torch cpu, t3d wall, t3d cpu
    with torch.no_grad():
        for name, n, ci, co, d, h, w, k, s, pad, tr in LAYERS:
            if a.only and name != a.only:
                continue
            x = torch.rand(1, ci, d, h, w) - 0.5
            b = torch.rand(co) - 0.5
            if tr:
                wt = torch.rand(ci, co, k, k, k) - 0.5
                run = lambda: F.conv_transpose3d(x, wt, b, stride=s, padding=pad)
                flops = 2.0 * ci * co * k ** 3 * d * h * w
            else:
                wt = torch.rand(co, ci, k, k, k) - 0.5
                run = lambda: F.conv3d(x, wt, b, stride=s, padding=pad)
                od, oh, ow = ((e + 2 * pad - k) // s + 1 for e in (d, h, w))
                flops = 2.0 * ci * co * k ** 3 * od * oh * ow
            best, best_cpu, reps, r = 1e30, 1e30, a.reps, 0
            while r <= reps:  # r == 0 warms up
                t0, c0 = time.perf_counter(), time.process_time()
                run()
                dt, dc = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3
                if r > 0:
                    best, best_cpu = min(best, dt), min(best_cpu, dc)
                if r == 0 and dt > 2000:
                    reps = 1  # very slow layer: one timed run
                r += 1
            line = f"{name:12s} {n:3d} {best:9.2f} {flops / best * 1e-6:8.1f} {best_cpu:9.2f}"
            if name in ours:
                ow_, oc_ = ours[name]
                line += f" {ow_:9.2f} {oc_:9.2f} {best / ow_:6.2f} {best_cpu / oc_:7.2f}"
            if not tr:
                tot[0] += n * best
                tot[1] += n * best_cpu
                if name in ours:
                    tot[2] += n * ours[name][0]
                    tot[3] += n * ours[name][1]
            print(line, flush=True)
    line = f"encoder convs total (sum of n x ms): torch {tot[0]:.1f} ms wall, {tot[1]:.1f} ms cpu"
    if tot[2]:
        line += f"; t3d {tot[2]:.1f} ms wall, {tot[3]:.1f} ms cpu; torch/t3d {tot[0] / tot[2]:.2f} wall, {tot[1] / tot[3]:.2f} cpu"
    print(line)
    print("ratio = torch ms / t3d ms: above 1 means t3d is faster")


if __name__ == "__main__":
    main()
