"""Linear probe of a tower: how well each finding can be read off the pooled layer-4 features of
the volume (what the vision projection sees; --tower vision) or off the text embedding of the
report (what CLIP aligns the volume with; --tower text) by an L2-regularised logistic regression
fitted on one cached phantom set and scored (AUROC) on another. Zero-shot AUROC cannot exceed what
the vision features hold, so probe and zero-shot side by side say whether the encoder or the
alignment limits a model; the text probe says how much of the reports' content the text side
keeps (a report states its findings in words, so a text tower that keeps them scores near 1).
  python -m train.probe --template init.safetensors [--ckpt run/final.pt] [--tower vision|text] \\
      --train-cache C --train-data D --cache EVALC --data EVALD [--json out.json]
Without --ckpt: the seeded random weights a training run starts from (the baseline a trained tower
must beat).
Not the zero-shot evaluation (train/evaluate.py) and not training."""
import argparse
import json

import torch
import torch.nn.functional as F

from train import data as D
from train.evaluate import auroc, text_embeddings
from train.model import T3DModel, load_weights


def features(model, cases, batch=16, text=None):
    """[N, C] features and [N, findings] truth (0/1) of a CaseSet, names in manifest order:
    pooled layer-4 features, or with text = (tokenizer, length) the reports' text embeddings."""
    if text:
        x = text_embeddings(model, text[0], text[1], cases.reports)
    else:
        with torch.no_grad():
            x = torch.cat([model.layer4(cases.x[i:i + batch]).mean(dim=(2, 3, 4))
                           for i in range(0, len(cases), batch)])
    names = list(cases.records[0]["truth"].keys())
    truth = torch.tensor([[float(r["truth"][n]["present"]) for n in names] for r in cases.records])
    return x, truth, names


def fit_logistic(x, y, l2=1e-3, iters=200):
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters)

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def main(argv=None):
    ap = argparse.ArgumentParser(description="linear probe of the pooled vision features per finding")
    ap.add_argument("--template", required=True, help="t3d model file giving the config")
    ap.add_argument("--ckpt", help="trainer checkpoint (final.pt); none: seeded random weights")
    ap.add_argument("--train-cache", required=True)
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--cache", required=True, help="evaluation cache")
    ap.add_argument("--data", required=True, help="evaluation phantom folder")
    ap.add_argument("--tower", choices=("vision", "text"), default="vision",
                    help="vision: pooled layer-4 features of the volume; text: embedding of the report")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write {finding: AUROC, ..., 'mean': m} here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg, vocab = D.read_model_meta(a.template)[:2]
    torch.manual_seed(1)  # without --ckpt: the initial weights train.train starts from (--seed 1)
    model = T3DModel(cfg)
    if a.ckpt:
        load_weights(model, torch.load(a.ckpt, map_location="cpu")["model"])
    model.eval()
    text = (D.tokenizer_for(vocab, cfg["text"]), D.max_tokens(cfg["text"])) if a.tower == "text" else None
    xtr, ytr, names = features(model, D.CaseSet(a.train_cache, a.train_data), text=text)
    xev, yev, names_ev = features(model, D.CaseSet(a.cache, a.data), text=text)
    if names_ev != names:
        raise SystemExit(f"the two sets have different findings: {names} / {names_ev}")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xev = (xtr - mu) / sd, (xev - mu) / sd
    res = {}
    for j, n in enumerate(names):
        w, b = fit_logistic(xtr, ytr[:, j])
        res[n] = auroc((xev @ w + b).tolist(), yev[:, j].tolist())
    vals = [v for v in res.values() if v is not None]
    res["mean"] = sum(vals) / len(vals) if vals else None
    for n, v in res.items():
        print(f"{n:24s} {'-' if v is None else f'{v:.3f}'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
