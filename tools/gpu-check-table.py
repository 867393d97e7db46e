#!/usr/bin/env python3
"""The table of tools/gpu-check.sh: for each input shape, the best t3d row (fp32 or tf32, from
t3d-SHAPE-PREC.json written by `t3d bench --json`) beside PyTorch's best mode (torch-SHAPE.json
from tools/bench-torch-gpu.py --json), with time and memory ratios, as Markdown on stdout.
Usage: gpu-check-table.py OUT_DIR D,H,W... Missing files show as n/a; it never measures."""
import json, os, sys
out, shapes = sys.argv[1], sys.argv[2:]
labels = {"encoder": "encoder", "segment": "encoder + segmentation", "text": "BERT (256 tokens)", "e2e": "end to end"}
def load(p):
    try:
        return json.load(open(p))
    except Exception:
        return None
print("| input | row | t3d best (ms) | t3d mode | t3d peak GPU MiB | PyTorch best (ms) | PyTorch mode | PyTorch peak MiB | t3d / PyTorch time | t3d / PyTorch memory |")
print("|---|---|---|---|---|---|---|---|---|---|")
gpu = ""
for shape in shapes:
    tag = shape.replace(",", "x")
    t3d = {p: load(os.path.join(out, "t3d-%s-%s.json" % (tag, p))) for p in ("fp32", "tf32")}
    torch = load(os.path.join(out, "torch-%s.json" % tag)) or {}
    gpu = torch.get("info", {}).get("gpu", gpu)
    for row, label in labels.items():
        cands = [(d[row]["ms"], p, d[row].get("gpu_peak_mib", float("nan")), d[row].get("backend", "?"))
                 for p, d in t3d.items() if d and row in d]
        tb = torch.get("best", {}).get(row)
        if cands:
            ms, p, mib, be = min(cands)
            tcell = "%.1f | %s%s | %.0f" % (ms, p, "" if be == "cuda" else " (ran on %s!)" % be, mib)
        else:
            ms, mib, tcell = None, None, "n/a | | "
        pcell = "%.1f | %s %s | %.0f" % (tb["ms"], tb["mode"], tb["exec"], tb["peak_mib"]) if tb else "n/a | | "
        ratio = "%.2f" % (ms / tb["ms"]) if (tb and ms) else "n/a"
        mratio = "%.2f" % (mib / tb["peak_mib"]) if (tb and mib and tb["peak_mib"]) else "n/a"
        print("| 1x%s | %s | %s | %s | %s | %s |" % (tag, label, tcell, pcell, ratio, mratio))
print()
print("GPU: %s. t3d peak = the backend's own allocations (weights, activation arena, cuDNN workspace);"
      " PyTorch peak = torch.cuda.max_memory_allocated. Times: best of the timed runs, synchronised." % (gpu or "?"))
