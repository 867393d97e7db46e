"""Quick evaluation in PyTorch on a cached phantom set, for ablations and training-time checks:
zero-shot AUROC per finding (softmax over each finding's prompt pair, as the C engine scores),
report->volume and volume->report retrieval R@1/5/10, and Dice per class on the MODEL grid
(`t3d eval` measures on the series grid and is the reference figure).
  python -m train.evaluate --ckpt RUN/final.pt --template T --cache C --data DIR [--findings F] [--json OUT]
Not `t3d eval`."""
import argparse
import json

import torch

from train import data as D
from train.model import T3DModel, load_weights


def auroc(scores, labels):
    """Area under the ROC curve (ties count one half); None when one class is missing."""
    pos = [s for s, l in zip(scores, labels) if l]
    neg = [s for s, l in zip(scores, labels) if not l]
    if not pos or not neg:
        return None
    p = torch.tensor(pos).unsqueeze(1)
    n = torch.tensor(neg).unsqueeze(0)
    return float(((p > n).float() + 0.5 * (p == n).float()).mean())


def recall_at(sim, ks=(1, 5, 10)):
    """sim [queries, items], the right item of query i is i."""
    rank = (sim > sim.diag().unsqueeze(1)).sum(dim=1)
    return {f"R@{k}": float((rank < k).float().mean()) for k in ks}


@torch.no_grad()
def text_embeddings(model, tok, length, texts, batch=32):
    """[N, D] embeddings of texts (reports or prompts), tokenized to length, batch at a time."""
    ids, mask = D.tokenize(tok, texts, length)
    return torch.cat([model.encode_text(ids[i:i + batch], mask[i:i + batch])[0] for i in range(0, len(texts), batch)])


@torch.no_grad()
def evaluate(model, cfg, vocab, findings, cases, batch=4):
    model.eval()
    tok = D.tokenizer_for(vocab, cfg["text"])
    length = D.max_tokens(cfg["text"])
    prompts = [f[k] for f in findings for k in ("positive", "negative")]
    pemb = text_embeddings(model, tok, length, prompts, batch=len(prompts))
    remb = text_embeddings(model, tok, length, cases.reports)
    ncls = cfg.get("segmentation", {}).get("classes", 0)
    vembs, inter, psum, tsum, present = [], torch.zeros(len(cases), ncls), torch.zeros(len(cases), ncls), \
        torch.zeros(len(cases), ncls), None
    for i in range(0, len(cases), batch):
        e, _, logits = model.encode_volume(cases.x[i:i + batch], segment=ncls > 0)
        vembs.append(e)
        if ncls:
            pred = logits.argmax(dim=1)
            lab = cases.labels[i:i + batch]
            for c in range(ncls):
                pc, tc = pred == c, lab == c
                inter[i:i + batch, c] = (pc & tc).flatten(1).sum(1).float()
                psum[i:i + batch, c] = pc.flatten(1).sum(1).float()
                tsum[i:i + batch, c] = tc.flatten(1).sum(1).float()
    vemb = torch.cat(vembs)
    scale = float(model.logit_scale.exp().clamp(max=100))
    lp, ln = scale * vemb @ pemb[0::2].t(), scale * vemb @ pemb[1::2].t()
    prob = torch.softmax(torch.stack([lp, ln], dim=-1), dim=-1)[..., 0]
    out = {"cases": len(cases), "auroc": {}, "prevalence": {}}
    for j, f in enumerate(findings):
        truth = [bool(r.get("truth", {}).get(f["name"], {}).get("present", False)) for r in cases.records]
        out["auroc"][f["name"]] = auroc(prob[:, j].tolist(), truth)
        out["prevalence"][f["name"]] = sum(truth)
    vals = [v for v in out["auroc"].values() if v is not None]
    out["macro_auroc"] = sum(vals) / len(vals) if vals else None
    sim = remb @ vemb.t()
    out["text_to_volume"] = recall_at(sim)
    out["volume_to_text"] = recall_at(sim.t())
    if ncls:
        names = cfg.get("_classes") or [str(c) for c in range(ncls)]
        dice = {}
        for c in range(1, ncls):
            has = (tsum[:, c] + psum[:, c]) > 0
            if has.any():
                d = 2 * inter[has, c] / (tsum[has, c] + psum[has, c])
                dice[names[c]] = float(d.mean())
        out["dice_model_grid"] = dice
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--findings")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, vocab, findings, classes = D.read_model_meta(a.template)
    if a.findings:
        findings = json.load(open(a.findings))
    cfg["_classes"] = classes
    ck = torch.load(a.ckpt, map_location="cpu")
    model = T3DModel(cfg, prototypes=ck["args"].get("prototypes", 32))
    load_weights(model, ck["model"])
    res = evaluate(model, cfg, vocab, findings, D.CaseSet(a.cache, a.data))
    txt = json.dumps(res, indent=1)
    print(txt)
    if a.json:
        with open(a.json, "w") as f:
            f.write(txt + "\n")


if __name__ == "__main__":
    main()
