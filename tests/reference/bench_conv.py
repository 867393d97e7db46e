#!/usr/bin/env python3
"""PyTorch timing of the same convolutions as tests/bench-conv.c (MONAI 3D ResNet-50 at
1x1x160x224x224, then the segmentation decoder's), for comparison.
Not a test. Usage: bench_conv.py [--threads 2] [--reps 3] [--only NAME] [--ours bench-conv.out]
                     [--engine torch|openvino]
With --ours, prints t3d's ms next to PyTorch's and the ratio torch/t3d (>1: t3d is faster).
--engine openvino times the same convolution as a one-node OpenVINO model (f32) instead; the
"torch" columns are then OpenVINO's, and each line also gives the convolution node's own time
(no layout reorders at the model's edges) and its primitive type / layout (e.g.
brgconv_avx2_1x1_f32/acdeb: brgemm convolution, 1x1 kernel, NDHWC)."""
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
    ("dec0.up", 1, 2048, 256, 5, 7, 7, 2, 2, 0, True),
    ("dec0.conv", 1, 1280, 256, 10, 14, 14, 3, 1, 1, False),
    ("dec1.up", 1, 256, 128, 10, 14, 14, 2, 2, 0, True),
    ("dec1.conv", 1, 640, 128, 20, 28, 28, 3, 1, 1, False),
    ("dec2.up", 1, 128, 64, 20, 28, 28, 2, 2, 0, True),
    ("dec2.conv", 1, 320, 64, 40, 56, 56, 3, 1, 1, False),
    ("dec3.up", 1, 64, 32, 40, 56, 56, 2, 2, 0, True),
    ("dec3.conv", 1, 96, 32, 80, 112, 112, 3, 1, 1, False),
    ("dec4.up", 1, 32, 16, 80, 112, 112, 2, 2, 0, True),
    ("dec4.conv", 1, 17, 16, 160, 224, 224, 3, 1, 1, False),
    ("head", 1, 16, 9, 160, 224, 224, 1, 1, 0, False),
]


def read_ours(path):
    ours = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 7 and parts[0] in {l[0] for l in LAYERS}:
                ours[parts[0]] = (float(parts[3]), float(parts[6]))  # wall ms, cpu ms
    return ours


def openvino_runner(x, wt, b, s, pad, tr, threads):
    """run() for one convolution compiled by OpenVINO's CPU plugin, and info() -> (node ms of the
    last run, primitive type / layout of the convolution node)."""
    import openvino as ov
    import openvino.opset13 as ops
    xp = ops.parameter(list(x.shape), ov.Type.f32)
    w = ops.constant(wt.numpy())
    if tr:
        y = ops.convolution_backprop_data(xp, w, [s] * 3, pads_begin=[pad] * 3, pads_end=[pad] * 3, dilations=[1] * 3)
    else:
        y = ops.convolution(xp, w, [s] * 3, [pad] * 3, [pad] * 3, [1] * 3)
    y = ops.add(y, ops.constant(b.numpy().reshape(1, -1, 1, 1, 1)))
    core = ov.Core()
    cm = core.compile_model(ov.Model([y], [xp]), "CPU",
                            {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
                             "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "PERF_COUNT": True})
    req = cm.create_infer_request()
    xn = x.numpy()

    def run():
        req.infer({0: xn})

    def info():
        node_us, kind = 0.0, ""
        for pi in req.get_profiling_info():
            if pi.node_type in ("Convolution", "Deconvolution", "ConvolutionBackpropData"):
                node_us += pi.real_time.total_seconds() * 1e6
                kind = pi.exec_type
        layout = ""
        for op in cm.get_runtime_model().get_ops():
            rt = op.get_rt_info()
            if "layerType" in rt and rt["layerType"].astype(str) in ("Convolution", "Deconvolution"):
                layout = rt["outputLayouts"].astype(str)
        return node_us / 1e3, "%s/%s" % (kind, layout)
    return run, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only")
    ap.add_argument("--ours")
    ap.add_argument("--engine", default="torch", choices=("torch", "openvino"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ours = read_ours(a.ours) if a.ours else {}
    if a.engine == "openvino":
        import openvino as ov
        print(f"# OpenVINO {ov.__version__} f32 (columns 'torch' are OpenVINO's), threads {a.threads}, "
              f"best of {a.reps}; wall ms and process CPU ms; node ms = the conv node alone")
    else:
        print(f"# torch {torch.__version__}, threads {a.threads}, best of {a.reps}; wall ms and process CPU ms")
    hdr = f"{'layer':12s} {'n':>3s} {'torch ms':>9s} {'GFLOP/s':>8s} {'cpu ms':>9s}"
    if ours:
        hdr += f" {'t3d ms':>9s} {'t3d cpu':>9s} {'ratio':>6s} {'cpu rat':>7s}"
    print(hdr)
    tot = {"encoder": [0.0] * 5, "decoder": [0.0] * 5}  # torch wall, torch cpu, t3d wall, t3d cpu, node
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
            info = None
            if a.engine == "openvino":
                run, info = openvino_runner(x, wt, b, s, pad, tr, a.threads)
            best, best_cpu, best_node, kind, reps, r = 1e30, 1e30, 1e30, "", a.reps, 0
            while r <= reps:  # r == 0 warms up
                t0, c0 = time.perf_counter(), time.process_time()
                run()
                dt, dc = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3
                if r > 0:
                    best, best_cpu = min(best, dt), min(best_cpu, dc)
                    if info:
                        node_ms, kind = info()
                        best_node = min(best_node, node_ms)
                if r == 0 and dt > 2000:
                    reps = 1  # very slow layer: one timed run
                r += 1
            line = f"{name:12s} {n:3d} {best:9.2f} {flops / best * 1e-6:8.1f} {best_cpu:9.2f}"
            if name in ours:
                ow_, oc_ = ours[name]
                line += f" {ow_:9.2f} {oc_:9.2f} {best / ow_:6.2f} {best_cpu / oc_:7.2f}"
            if info:
                line += f"  node {best_node:.2f} ms {kind}"
            t = tot["decoder" if name.startswith(("dec", "head")) else "encoder"]
            t[0] += n * best
            t[1] += n * best_cpu
            t[4] += n * best_node if info else 0
            if name in ours:
                t[2] += n * ours[name][0]
                t[3] += n * ours[name][1]
            print(line, flush=True)
    for part, t in tot.items():
        line = f"{part} total (sum of n x ms): torch {t[0]:.1f} ms wall, {t[1]:.1f} ms cpu"
        if t[4]:
            line += f" (nodes alone {t[4]:.1f} ms)"
        if t[2]:
            line += f"; t3d {t[2]:.1f} ms wall, {t[3]:.1f} ms cpu; torch/t3d {t[0] / t[2]:.2f} wall, {t[1] / t[3]:.2f} cpu"
        print(line)
    print("ratio = torch ms / t3d ms: above 1 means t3d is faster")


if __name__ == "__main__":
    main()
