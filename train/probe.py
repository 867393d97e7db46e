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
must beat). Two towers need no network: --tower histogram reads the findings off a histogram of
the input's HU (HISTOGRAM_EDGES, log counts, the whole volume): what a vision tower could learn
with no spatial sense at all; --tower histogram-labels the same histogram inside each labelled class
of the label volume (oracle masks): what intensity within each organ holds; --tower
histogram-predicted the same inside the model's own segmentation (each voxel counted into each
class with the decoder's softmax probability: the class histograms a "class_histogram_hu" model's
embedding reads, core/model/modelconfig.h; with --erosion r, or the config's "class_histogram_erosion",
followed by those of the classes eroded by a (2r+1)^3 cube). --model FILE probes a t3d model file (e.g. the bundled
model) instead of a checkpoint. --jitter J applies the
trainer's intensity jitter (train.data view_params: x * a + b, a in 1 +- J, b in +- J / 2 on the
normalised input, seeded by sample) to every volume first, for any tower: how much of a tower's
evidence survives an augmentation that the encoder is trained to ignore.
Not the zero-shot evaluation (train/evaluate.py) and not training."""
import argparse
import json

import torch
import torch.nn.functional as F

from train import data as D
from train.evaluate import auroc, text_embeddings
from train.model import T3DModel, load_model_file, load_weights, projection_histograms


# HU bin edges of the histogram towers: finer where the findings differ (air and emphysema
# -1000..-950, aerated lung -900..-800, fluid 0-20, soft tissue and enhanced organs 30-160)
HISTOGRAM_EDGES = (-1000, -990, -960, -930, -900, -870, -840, -800, -700, -500, -200, -120, -60, -20, 0, 10,
                   20, 30, 40, 50, 60, 80, 100, 130, 160, 200, 400, 1000)


def histogram_features(cases, hu_min, hu_max, per_label=0, model=None, batch=16, erosion=0):
    """[N, bins] (per_label = 0) or [N, per_label * bins] log(1 + count) of the input's HU (the
    normalised input mapped back through the min-max window) in HISTOGRAM_EDGES; with per_label the
    count runs inside each label class 0..per_label-1 of the case's label volume, or, with model,
    of the model's own segmentation (each voxel counted into each class with the decoder's softmax
    probability: what the encoder's masks, not the truth, give)."""
    if model is not None:  # the engine's class histograms (train.model / tests/reference), these edges
        hist = (HISTOGRAM_EDGES, hu_min, hu_max, erosion)  # erosion > 0: then those of the classes' interiors
        with torch.no_grad():
            return torch.cat([projection_histograms(xb, model.visual.seg(model.visual.pyramid(xb)).softmax(dim=1), hist)
                              for xb in cases.x.split(batch)])
    edges = torch.tensor(HISTOGRAM_EDGES, dtype=torch.float32)
    bins = len(HISTOGRAM_EDGES) - 1
    out = []
    for i in range(cases.x.shape[0]):
        hu = (cases.x[i].flatten() * (hu_max - hu_min) + hu_min).clamp(hu_min, hu_max)
        b = (torch.bucketize(hu, edges, right=True) - 1).clamp(0, bins - 1)  # the top bin takes hu_max too
        if per_label:
            b = cases.labels[i].flatten().long().clamp(0, per_label - 1) * bins + b
        out.append(torch.bincount(b, minlength=max(per_label, 1) * bins).float().log1p())
    return torch.stack(out)


def jitter_inputs(cases, jitter, seed=1):
    """Applies the trainer's input jitter to every cached volume in place (sample i drawn from
    train.data's generator for (seed, step 0, i), as view 0 of a training step)."""
    ab = D.view_params(seed, 0, range(cases.x.shape[0]), 0, list(cases.x.shape[2:]), jitter)[0][0]
    cases.x = cases.x * ab[:, 0].view(-1, 1, 1, 1, 1) + ab[:, 1].view(-1, 1, 1, 1, 1)


def features(model, cases, batch=16, text=None, histogram=None):
    """[N, C] features and [N, findings] truth (0/1) of a CaseSet, names in manifest order:
    pooled layer-4 features, with text = (tokenizer, length) the reports' text embeddings, or with
    histogram = (hu_min, hu_max, per_label, predicted, erosion) histogram_features."""
    if text:
        x = text_embeddings(model, text[0], text[1], cases.reports)
    elif histogram:
        x = histogram_features(cases, *histogram[:3], model=model if histogram[3] else None, erosion=histogram[4])
    else:
        with torch.no_grad():
            x = torch.cat([model.layer4(cases.x[i:i + batch]).mean(dim=(2, 3, 4))
                           for i in range(0, len(cases), batch)])
    return (x,) + truth(cases)


def truth(cases):
    """[N, findings] float 0/1 truth of a CaseSet and the findings' names, in manifest order."""
    names = list(cases.records[0]["truth"].keys())
    return torch.tensor([[float(r["truth"][n]["present"]) for n in names] for r in cases.records]), names


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


def report(res, json_path=None, **extra):
    """Adds the mean of the per-finding AUROCs in res (None where a finding had one class only)
    and extra's items to res, prints them a line each and writes them to json_path if given."""
    vals = [v for v in res.values() if v is not None]
    res["mean"] = sum(vals) / len(vals) if vals else None
    res.update(extra)
    for n, v in res.items():
        print(f"{n:24s} {'-' if v is None else f'{v:.3f}'}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(res, f, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description="linear probe of the pooled vision features per finding")
    ap.add_argument("--template", required=True, help="t3d model file giving the config")
    ap.add_argument("--ckpt", help="trainer checkpoint (final.pt); none: seeded random weights")
    ap.add_argument("--train-cache", required=True)
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--cache", required=True, help="evaluation cache")
    ap.add_argument("--data", required=True, help="evaluation phantom folder")
    ap.add_argument("--model", help="t3d model file to probe instead of --ckpt (e.g. the bundled model)")
    ap.add_argument("--tower", choices=("vision", "text", "histogram", "histogram-labels", "histogram-predicted"),
                    default="vision",
                    help="vision: pooled layer-4 features of the volume; text: embedding of the report; "
                         "histogram: HU histogram of the input; histogram-labels: the same per label class; "
                         "histogram-predicted: per class of the model's own segmentation")
    ap.add_argument("--erosion", type=int, default=None,
                    help="histogram-predicted: also the histograms of the classes eroded by a (2r+1)^3 cube "
                         "(\"class_histogram_erosion\"; default: the model config's, 0 without)")
    ap.add_argument("--jitter", type=float, default=0.0,
                    help="apply the trainer's intensity jitter of this size to every volume first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write {finding: AUROC, ..., 'mean': m} here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg, vocab = D.read_model_meta(a.template)[:2]
    torch.manual_seed(1)  # without --ckpt: the initial weights train.train starts from (--seed 1)
    model = T3DModel(cfg)
    if a.ckpt:
        load_weights(model, torch.load(a.ckpt, map_location="cpu")["model"])
    elif a.model:
        load_model_file(model, a.model)
    model.eval()
    text = (D.tokenizer_for(vocab, cfg["text"]), D.max_tokens(cfg["text"])) if a.tower == "text" else None
    pp = cfg["preprocess"]
    histogram = None
    if a.tower.startswith("histogram"):  # the engine's input is min-max normalised (core/model/model.c)
        per_class = a.tower in ("histogram-labels", "histogram-predicted")
        histogram = (float(pp["hu_min"]), float(pp["hu_max"]),
                     cfg.get("segmentation", {}).get("classes", 0) if per_class else 0,
                     a.tower == "histogram-predicted",
                     a.erosion if a.erosion is not None else int(cfg["projection"].get("class_histogram_erosion", 0)))
        if per_class and not histogram[2]:
            raise SystemExit(f"--tower {a.tower} needs a model config with segmentation classes")
    sets = []
    for cache, data in ((a.train_cache, a.train_data), (a.cache, a.data)):
        cs = D.CaseSet(cache, data)
        if a.jitter > 0:
            jitter_inputs(cs, a.jitter)
        sets.append(features(model, cs, text=text, histogram=histogram))
    (xtr, ytr, names), (xev, yev, names_ev) = sets
    if names_ev != names:
        raise SystemExit(f"the two sets have different findings: {names} / {names_ev}")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xev = (xtr - mu) / sd, (xev - mu) / sd
    res = {}
    for j, n in enumerate(names):
        w, b = fit_logistic(xtr, ytr[:, j])
        res[n] = auroc((xev @ w + b).tolist(), yev[:, j].tolist())
    report(res, a.json)


if __name__ == "__main__":
    main()
