"""Supervised ceiling (a diagnostic, not how the bundled model is trained): the vision tower with a
linear head on its pooled layer-4 features, trained from the seeded initial weights on the
findings' truth directly (binary cross-entropy per finding), for a wall-time budget; AUROC per
finding on the evaluation phantoms. It says how fast this encoder, on this CPU, learns the findings
when the signal is the labels themselves rather than CLIP's contrast with the reports: if it learns
them quickly the contrastive signal is the limit, if not the encoder and the budget are.
  python -m train.ceiling --template init.safetensors --cache C --data D --eval-cache EC --eval-data ED \\
      --minutes 20 [--input-jitter 0.1] [--limit N] [--more CACHE DATA] [--threads 1] [--json out.json]
--input-jitter: the trainer's input-view jitter (train.data.view_params), applied per step."""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from train import data as D
from train.evaluate import auroc
from train.model import T3DModel
from train.probe import report, truth


def main(argv=None):
    ap = argparse.ArgumentParser(description="supervised ceiling of the vision tower (diagnostic)")
    ap.add_argument("--template", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--eval-cache", required=True)
    ap.add_argument("--eval-data", required=True)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--input-jitter", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N training cases only")
    ap.add_argument("--more", nargs=2, action="append", default=[], metavar=("CACHE", "DATA"),
                    help="another training set appended to --cache/--data (repeatable)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = D.read_model_meta(a.template)[0]
    torch.manual_seed(a.seed)  # the initial weights train.train starts from
    model = T3DModel(cfg)
    vis = model.visual
    tr, ev = D.CaseSet(a.cache, a.data), D.CaseSet(a.eval_cache, a.eval_data)
    for cache, data in a.more:
        more = D.CaseSet(cache, data)
        tr.x, tr.records, tr.cases = torch.cat([tr.x, more.x]), tr.records + more.records, tr.cases + more.cases
    if a.limit:
        tr.x, tr.records, tr.cases = tr.x[:a.limit], tr.records[:a.limit], tr.cases[:a.limit]
    y, names = truth(tr)
    head = nn.Linear(model.tma.q.in_features, len(names))  # layer 4's channels
    params = list(vis.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
    t0, step, losses = time.time(), 0, []
    vis.train()
    while time.time() - t0 < 60 * a.minutes:
        frac = (time.time() - t0) / (60 * a.minutes)
        for g in opt.param_groups:  # warm-up over 30 steps, then cosine over the wall time
            g["lr"] = a.lr * min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * frac))
        idx = D.global_batch_indices(len(tr), a.batch, a.seed, step)
        xb = D.make_views(tr.x[idx], a.seed, step, idx.tolist(), n_local=0, input_jitter=a.input_jitter)[0]
        loss = F.binary_cross_entropy_with_logits(head(vis.pyramid(xb)[5].mean(dim=(2, 3, 4))), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss))
        step += 1
    vis.eval()
    with torch.no_grad():
        s = torch.cat([head(vis.pyramid(ev.x[i:i + 16])[5].mean(dim=(2, 3, 4))) for i in range(0, len(ev), 16)])
    yev = truth(ev)[0]
    res = {n: auroc(s[:, j].tolist(), yev[:, j].bool().tolist()) for j, n in enumerate(names)}
    report(res, a.json, steps=step, loss_last100=sum(losses[-100:]) / max(1, len(losses[-100:])))


if __name__ == "__main__":
    main()
