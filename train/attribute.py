"""Which inputs of the vision projection make a model read a finding on a series: integrated
gradients of the finding's zero-shot logit difference (logit_positive - logit_negative, as
`t3d analyze --json` reports them) along the straight line from a baseline to the series, over
what the vision projection reads (the pooled layer-4 feature and, with "class_histogram_hu", the
class histograms of the model's own segmentation, whole classes and their interiors). The baseline
is the mean projection input of the reference phantoms without the finding, so the attributions
say why this series scores above (or below) a typical negative case; they sum to that difference
(completeness), up to the integral's discretisation, which the output states.

  python -m train.attribute --model models/t3d-tiny.safetensors --series ../shared/data/real-ct/chest-… \\
      --baseline-cache runs/t3d-tiny/eval-cache.safetensors --baseline-data runs/t3d-tiny/eval \\
      [--finding "pleural effusion" ...] [--top 8] [--json out.json]

The series goes through the C engine's own preprocessing (`t3d preprocess`, with the model's own
segmentation from `t3d analyze --mask` standing in for the label volume it needs), so the input is
the one `t3d analyze` feeds. Grouped sums: "pooled", then "whole:<class>" and "interior:<class>"
over each class's HU bins. Input values are what the model file's projection reads: the pooled
feature, and log(1 + softmax mass) per class and bin for the histograms. A tool for keeping phantoms honest against
real CT (README: "The bundled model", real CT), not part of training or evaluation."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

from train import data as D
from train.evaluate import text_embeddings
from train.model import T3DModel, load_model_file


def series_cache(t3d, model, series, work):
    """Preprocesses each DICOM series folder as `t3d analyze` does into work/cache.safetensors (its
    label volume: the model's own segmentation); returns (CaseSet, the case names)."""
    data = os.path.join(work, "series")
    os.makedirs(data)
    lines = []
    for i, s in enumerate(series):
        case = f"series-{i:02d}"
        os.symlink(os.path.abspath(s), os.path.join(data, case))
        mask = os.path.join(data, case + "-mask.nii.gz")
        subprocess.run([t3d, "analyze", s, "--model", model, "--mask", mask, "--json"],
                       check=True, stdout=subprocess.DEVNULL)
        lines.append(json.dumps({"case": case, "series": case, "labels": case + "-mask.nii.gz", "report": "",
                                 "truth": {}}))
    with open(os.path.join(data, "manifest.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    cache = os.path.join(work, "cache.safetensors")
    subprocess.run([t3d, "preprocess", "--data", data, "--model", model, "-o", cache], check=True,
                   stdout=subprocess.DEVNULL)
    return D.CaseSet(cache, data), [os.path.basename(s.rstrip("/")) for s in series]


def input_names(model, cfg, classes):
    """A name for each input of the vision projection."""
    names = ["pooled"] * model.c4
    if model.hist:
        edges = model.hist[0]
        parts = ("whole", "interior") if model.hist[3] else ("whole",)
        names += [f"{p}:{c}:[{edges[b]:g},{edges[b + 1]:g})" for p in parts for c in classes
                  for b in range(len(edges) - 1)]
    return names


def integrated_gradients(score, x, base, steps):
    """Attributions of score(x) - score(base) to each input: (x - base) times the mean gradient
    along the straight path (midpoint rule, `steps` points)."""
    total = torch.zeros_like(x)
    for k in range(steps):
        p = (base + (k + 0.5) / steps * (x - base)).requires_grad_(True)
        g, = torch.autograd.grad(score(p).sum(), p)
        total += g
    return total / steps * (x - base)


def main(argv=None):
    ap = argparse.ArgumentParser(description="integrated gradients of a finding's zero-shot logit difference")
    ap.add_argument("--model", required=True, help="t3d model file")
    ap.add_argument("--series", required=True, action="append", help="DICOM series folder (repeatable)")
    ap.add_argument("--baseline-cache", required=True, help="`t3d preprocess` cache of reference phantoms")
    ap.add_argument("--baseline-data", required=True, help="their phantom folder (manifest with truth)")
    ap.add_argument("--finding", action="append", help="finding name (repeatable; default: all)")
    ap.add_argument("--top", type=int, default=8, help="single inputs listed per finding")
    ap.add_argument("--steps", type=int, default=64, help="integration points")
    ap.add_argument("--t3d", default=os.path.join(os.path.dirname(__file__), "..", "_build", "t3d"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg, vocab, findings, classes = D.read_model_meta(a.model)[:4]
    model = T3DModel(cfg)
    load_model_file(model, a.model)
    model.eval()
    missing = set(a.finding or []) - {f["name"] for f in findings}
    if missing:
        sys.exit(f"{a.model} has no finding {sorted(missing)}")
    tok, length = D.tokenizer_for(vocab, cfg["text"]), D.max_tokens(cfg["text"])
    ref = D.CaseSet(a.baseline_cache, a.baseline_data)
    with torch.no_grad():
        fref = torch.cat([model.projection_inputs(ref.x[i:i + 16])[0] for i in range(0, len(ref), 16)])
    with tempfile.TemporaryDirectory() as work:
        cs, names = series_cache(a.t3d, a.model, a.series, work)
        with torch.no_grad():
            fser = model.projection_inputs(cs.x)[0]
    labels = input_names(model, cfg, classes)
    scale = model.logit_scale.exp().item()
    wanted = [f for f in findings if not a.finding or f["name"] in a.finding]
    out = []
    for f in wanted:
        with torch.no_grad():
            w = (text_embeddings(model, tok, length, [f["positive"]]) -
                 text_embeddings(model, tok, length, [f["negative"]]))[0] * scale

        def score(x):
            return model.embed_features(x) @ w

        present = torch.tensor([bool(r["truth"].get(f["name"], {}).get("present")) for r in ref.records])
        neg = ~present if (~present).any() else torch.ones_like(present)
        base = fref[neg].mean(0, keepdim=True)
        with torch.no_grad():
            s_ref, s_base = score(fref), score(base).item()
        for i, name in enumerate(names):
            attr = integrated_gradients(score, fser[i:i + 1], base, a.steps)[0]
            with torch.no_grad():
                s = score(fser[i:i + 1]).item()
            groups = {}
            for j, lab in enumerate(labels):
                key = lab.rsplit(":", 1)[0]
                groups[key] = groups.get(key, 0.0) + attr[j].item()
            top = [{"input": labels[j], "attribution": attr[j].item(), "value": fser[i, j].item(),
                    "baseline": base[0, j].item()} for j in attr.abs().argsort(descending=True)[:a.top].tolist()]
            r = {"series": name, "finding": f["name"], "logit_difference": s, "baseline_logit_difference": s_base,
                 "negatives": [s_ref[neg].mean().item(), s_ref[neg].std().item() if neg.sum() > 1 else 0.0],
                 "positives": ([s_ref[present].mean().item(), s_ref[present].std().item() if present.sum() > 1 else 0.0]
                               if present.any() else None),
                 "attribution_sum": attr.sum().item(),
                 "groups": dict(sorted(groups.items(), key=lambda t: -abs(t[1]))), "top": top}
            out.append(r)
            pos = r["positives"]
            print(f"{name}: {f['name']}: logit difference {s:+.3f} (reference negatives {r['negatives'][0]:+.3f} "
                  f"± {r['negatives'][1]:.3f}" + (f", positives {pos[0]:+.3f} ± {pos[1]:.3f}" if pos else "") +
                  f"); attributions sum to {r['attribution_sum']:+.3f} of {s - s_base:+.3f} above the baseline")
            for key, v in list(r["groups"].items())[:6]:
                print(f"  {key:28s} {v:+.3f}")
            for t in top:
                print(f"  {t['input']:40s} {t['attribution']:+.3f}  (input {t['value']:+.2f}, baseline {t['baseline']:+.2f})")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
