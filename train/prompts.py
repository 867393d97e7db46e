"""Prompt selection on held-out cases: for each finding, every (positive, negative) pair of the
candidate phrasings is scored by its zero-shot AUROC (the logit difference t3d analyze ranks by)
on a cached phantom set that training did not see (the calibration phantoms, never the
evaluation ones), and the best pair is written as the findings list for train.export --findings.
Candidates are the reports' own phrasings of each finding and its negation, written generically
(no side, size or count); the current pair always competes, and wins ties.
  python -m train.prompts --ckpt run/final.pt --template init.safetensors --cache CALIBCACHE \\
      --data CALIBDIR --findings train/recipes/findings.json \\
      --candidates train/recipes/prompt-candidates.json -o findings.json
Not the evaluation (the chosen pairs are scored on the evaluation phantoms by t3d eval)."""
import argparse
import json

import torch

from train import data as D
from train.evaluate import auroc, text_embeddings
from train.export import embed
from train.model import T3DModel, load_weights


def select(model, cfg, vocab, findings, candidates, cases):
    """(findings with the best pair each, [(name, old AUROC, new AUROC, pair)]) on cases."""
    tok = D.tokenizer_for(vocab, cfg["text"])
    length = D.max_tokens(cfg["text"])
    with torch.no_grad():
        e = embed(model, cases.x)
    out, log = [], []
    for f in findings:
        truth = [r.get("truth", {}).get(f["name"], {}).get("present") for r in cases.records]
        c = candidates.get(f["name"], {})
        pos = [f["positive"]] + [p for p in c.get("positive", []) if p != f["positive"]]
        neg = [f["negative"]] + [n for n in c.get("negative", []) if n != f["negative"]]
        if any(t is None for t in truth) or len(set(truth)) < 2:
            out.append(f)
            continue
        with torch.no_grad():
            pe = text_embeddings(model, tok, length, pos)
            ne = text_embeddings(model, tok, length, neg)
        sp, sn = e @ pe.t(), e @ ne.t()  # [cases, candidates]
        best, pair, first = -1.0, (0, 0), None
        for i in range(len(pos)):
            for j in range(len(neg)):
                a = auroc((sp[:, i] - sn[:, j]).tolist(), truth)
                if first is None:
                    first = a
                if a > best + 1e-12:
                    best, pair = a, (i, j)
        g = dict(f, positive=pos[pair[0]], negative=neg[pair[1]])
        g.pop("calibration", None)  # refitted by train.export --calibrate-findings
        out.append(g)
        log.append((f["name"], first, best, (pos[pair[0]], neg[pair[1]])))
    return out, log


def main(argv=None):
    ap = argparse.ArgumentParser(description="pick each finding's prompt pair on held-out phantoms")
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--cache", required=True, help="held-out cases (t3d preprocess), not the evaluation set")
    ap.add_argument("--data", required=True, help="their phantom folder")
    ap.add_argument("--findings", required=True, help="the current findings list (JSON)")
    ap.add_argument("--candidates", required=True, help='{finding: {"positive": [...], "negative": [...]}}')
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg, vocab = D.read_model_meta(a.template)[:2]
    model = T3DModel(cfg)
    load_weights(model, torch.load(a.ckpt, map_location="cpu")["model"])
    model.eval()
    findings = json.load(open(a.findings))
    out, log = select(model, cfg, vocab, findings, json.load(open(a.candidates)), D.CaseSet(a.cache, a.data))
    for name, old, new, pair in log:
        print(f"{name:18s} {old:.3f} -> {new:.3f}  {pair[0]!r} / {pair[1]!r}")
    with open(a.output, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
