"""Export a trained T3DModel straight to a t3d model file: the tensors the C engine loads
(vision, decoder, projections, logit_scale, BERT without pooler) plus the template's config,
vocabulary and classes and the findings with their prompt pairs. The TMA head is training-only
and not written. With a calibration set (the training cases' cache), also the familiarity
reference the C engine checks every series against: calib.reference (their pooled encoder
features, or with --calibrate-space embedding their embeddings) and t3d.calibration (the
nearest-neighbour cosine threshold, from held-out cases when given), and
with --calibrate-findings each finding's probability fitted on the held-out cases' truth.
Also a command:
  python -m train.export {--ckpt final.pt | --model FILE} --template T [--calibrate CACHE --calibrate-data DIR
      [--calibrate-holdout CACHE --calibrate-holdout-data DIR [--calibrate-findings]]] -o OUT
Not a converter of foreign checkpoints (tools/convert-*.py)."""
import argparse
import json
import math
import sys

import torch
import torch.nn.functional as F

from train.model import T3DModel, exported_state, load_model_file, load_weights
import t3d_safetensors as st  # noqa: E402  (path set by train.model)


@torch.no_grad()
def over_batches(model, x, fn, batch=8):
    """torch.cat of fn over x [N, 1, Z, Y, X] batch at a time, the model in inference mode."""
    was = model.training
    model.eval()
    out = torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])
    model.train(was)
    return out


def embed(model, x, batch=8):
    """L2-normalised embeddings [N, D] of x [N, 1, Z, Y, X] (cases as the engine preprocesses them)."""
    return over_batches(model, x, lambda b: model.encode_volume(b, segment=False)[0], batch)


def pooled(model, x, batch=8):
    """L2-normalised pooled layer-4 features [N, C] of x (what the projection reads): the
    familiarity space "pooled", where a scan's appearance (coverage, contrast, slice spacing,
    scanner) still shows; the aligned embedding keeps mostly the findings."""
    return over_batches(model, x, lambda b: F.normalize(model.layer4(b).mean(dim=(2, 3, 4)), dim=-1), batch)


def familiarity_reference(model, x, quantile=0.01, holdout=None, space="pooled"):
    """(reference [N, D], threshold, nearest): the embeddings of the training cases x, and the
    cosine threshold that a fraction 1 - quantile of cases reach to their nearest reference case.
    Those cases are holdout [M, 1, Z, Y, X] (unseen cases of the training distribution: the sound
    estimate, since a model's own training cases lie closer to each other than new ones do) or,
    without it, the training cases themselves, leaving each one out. nearest: their cosines. The
    engine calls a series familiar when its nearest cosine to the reference reaches the threshold."""
    if len(x) < 2:
        raise ValueError("the familiarity reference needs at least 2 cases")
    vec = {"pooled": pooled, "embedding": embed}[space]
    ref = vec(model, x)
    if holdout is not None and len(holdout):
        nearest = (vec(model, holdout) @ ref.t()).max(dim=1).values
    else:
        sim = ref @ ref.t()
        sim.fill_diagonal_(-2)
        nearest = sim.max(dim=1).values
    # a cosine, clamped: float rounding can put a case's cosine with itself a hair above 1
    return ref, min(1.0, max(-1.0, float(torch.quantile(nearest, quantile)))), nearest


def export(model, template, out, findings=None, extra_meta=None, calibration=None):
    """calibration: None, or (reference [N, D], {"threshold": T, ...}) from familiarity_reference."""
    _, meta = st.read(template)
    keep = {k: v for k, v in meta.items() if k in ("t3d.config", "t3d.vocab", "t3d.classes", "t3d.findings")}
    if findings is not None:
        keep["t3d.findings"] = st.json_meta(findings)
    for k, v in (extra_meta or {}).items():
        keep[k] = v
    tensors = {k: v.detach().float().cpu() for k, v in exported_state(model).items()}
    if calibration is not None:
        tensors["calib.reference"] = calibration[0].detach().float().cpu().contiguous()
        keep["t3d.calibration"] = st.json_meta(calibration[1])
    st.write(out, tensors, keep)


def calibration_from(model, cache, data, quantile=0.01, holdout_cache=None, holdout_data=None, space="pooled"):
    """(reference, metadata) for export() from cached case sets (train.data.CaseSet): the training
    cases, and optionally held-out cases for the threshold."""
    from train.data import CaseSet
    cases = CaseSet(cache, data)
    held = CaseSet(holdout_cache, holdout_data) if holdout_cache else None
    ref, thr, nearest = familiarity_reference(model, cases.x, quantile, held.x if held else None, space)
    meta = {"threshold": thr, "space": space, "quantile": quantile, "cases": len(cases),
            "nearest_median": float(nearest.median()), "source": str(data)}
    meta["threshold_from"] = f"{len(held)} held-out cases ({holdout_data})" if held else "leave-one-out"
    return ref, meta


def fit_platt(d, y, iters=100, ridge=1e-2):
    """(slope >= 0, intercept) of p = sigmoid(slope * d + intercept) by maximum likelihood (Newton's
    method on the logistic loss, float64, with a small ridge on the slope so that cases the logit
    difference separates perfectly give a finite slope); a slope that would turn negative is held at
    0, where the probability is the positives' rate: a finding the model ranks backwards on these
    cases is reported as unknown, not flipped."""
    d, y = d.double(), y.double()
    w = torch.zeros(2, dtype=torch.float64)
    X = torch.stack([d, torch.ones_like(d)], dim=1)
    R = torch.diag(torch.tensor([ridge, 1e-9], dtype=torch.float64))
    for _ in range(iters):
        p = torch.sigmoid(X @ w)
        g = X.t() @ (p - y) + R @ w
        H = X.t() @ (X * (p * (1 - p)).unsqueeze(1)) + R
        step = torch.linalg.solve(H, g)
        w = w - step
        if float(step.abs().max()) < 1e-10:
            break
    if w[0] < 0 or not torch.isfinite(w).all():  # the intercept alone: log odds of the positives' rate
        rate = float(y.mean().clamp(1e-6, 1 - 1e-6))
        return 0.0, math.log(rate / (1 - rate))
    return float(w[0]), float(w[1])


@torch.no_grad()
def findings_calibration(model, template, findings, cache, data):
    """findings with a "calibration" {slope, intercept, cases, positives, auroc} each, fitted on the cases
    of cache/data (held out from training; their manifest's truth): the engine's probability of a
    finding becomes sigmoid(slope * (logit_pos - logit_neg) + intercept), the logits being those
    `t3d analyze` computes (logit scale times each prompt's cosine with the volume). A finding whose
    truth the cases do not give, or that is all present or all absent there, stays uncalibrated.
    auroc: how well the logit difference ranks those cases (Platt scaling keeps the ranking): the
    engine calls a finding below T3D_FINDING_MIN_AUROC (core/model/model.h) "not assessed"."""
    from train import data as D
    from train.evaluate import auroc, text_embeddings
    cfg, vocab = D.read_model_meta(template)[:2]
    cases = D.CaseSet(cache, data)
    was = model.training
    model.eval()
    tok = D.tokenizer_for(vocab, cfg["text"])
    length = D.max_tokens(cfg["text"])
    pos = text_embeddings(model, tok, length, [f["positive"] for f in findings])
    neg = text_embeddings(model, tok, length, [f["negative"] for f in findings])
    e = embed(model, cases.x)
    scale = float(model.logit_scale.exp().clamp(max=100.0))  # as the engine reads logit_scale
    diff = scale * (e @ pos.t() - e @ neg.t())                 # [cases, findings]
    model.train(was)
    out = []
    for j, f in enumerate(findings):
        truth = [r.get("truth", {}).get(f["name"], {}).get("present") for r in cases.records]
        f = {k: v for k, v in f.items() if k != "calibration"}
        if any(t is None for t in truth) or len(set(truth)) < 2:
            out.append(f)
            continue
        y = torch.tensor([1.0 if t else 0.0 for t in truth])
        a, b = fit_platt(diff[:, j], y)
        f["calibration"] = {"slope": a, "intercept": b, "cases": len(truth), "positives": int(y.sum()),
                            "auroc": round(auroc(diff[:, j].tolist(), y.tolist()), 4)}
        out.append(f)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="a training checkpoint (train.train's final.pt)")
    src.add_argument("--model", help="a t3d model file of the template's configuration: exported again, e.g. "
                     "with a new calibration (the same tensors, bit for bit)")
    ap.add_argument("--template", required=True)
    ap.add_argument("--findings", help="JSON list of {name, positive, negative}")
    ap.add_argument("--calibrate", metavar="CACHE", help="training cases' cache (t3d preprocess): write the "
                    "familiarity reference from them")
    ap.add_argument("--calibrate-data", metavar="DIR", help="their phantom folder (manifest.jsonl)")
    ap.add_argument("--calibrate-holdout", metavar="CACHE", help="unseen cases of the same kind (cache) that set "
                    "the threshold; default: the training cases, leaving each one out")
    ap.add_argument("--calibrate-holdout-data", metavar="DIR", help="their phantom folder")
    ap.add_argument("--calibrate-quantile", type=float, default=0.01,
                    help="fraction of those cases allowed below the threshold (default 0.01)")
    ap.add_argument("--calibrate-space", choices=("pooled", "embedding"), default="pooled",
                    help="what the familiarity reference holds: pooled encoder features (default) or the "
                    "embeddings")
    ap.add_argument("--calibrate-findings", action="store_true",
                    help="also fit each finding's probability (Platt scaling of its logit difference) on the "
                    "--calibrate-holdout cases and their manifest's truth")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    if a.calibrate_findings and not a.calibrate_holdout:
        ap.error("--calibrate-findings fits on the --calibrate-holdout cases")
    if bool(a.calibrate) != bool(a.calibrate_data) or bool(a.calibrate_holdout) != bool(a.calibrate_holdout_data):
        ap.error("--calibrate and --calibrate-data go together, as do the --calibrate-holdout options")
    if a.calibrate_holdout and not a.calibrate:
        ap.error("--calibrate-holdout needs --calibrate")
    torch.set_num_threads(a.threads)
    from train.data import read_model_meta
    cfg = read_model_meta(a.template)[0]
    if a.model:
        model = T3DModel(cfg)
        load_model_file(model, a.model)
    else:
        ck = torch.load(a.ckpt, map_location="cpu")
        model = T3DModel(cfg, prototypes=ck["args"].get("prototypes", 32))
        load_weights(model, ck["model"])
    calib = calibration_from(model, a.calibrate, a.calibrate_data, a.calibrate_quantile, a.calibrate_holdout,
                             a.calibrate_holdout_data, a.calibrate_space) if a.calibrate else None
    findings = json.load(open(a.findings)) if a.findings else None
    if a.calibrate_findings:
        from train.data import read_model_meta as meta_of
        findings = findings_calibration(model, a.template, findings or meta_of(a.template)[2], a.calibrate_holdout,
                                        a.calibrate_holdout_data)
        for f in findings:
            c = f.get("calibration")
            print(f"{f['name']}: " + (f"slope {c['slope']:.4f}, intercept {c['intercept']:.3f} "
                                      f"({c['positives']} of {c['cases']} positive), AUROC {c['auroc']:.3f}"
                                      if c else "not calibrated"),
                  file=sys.stderr)
    export(model, a.template, a.output, findings, calibration=calib)


if __name__ == "__main__":
    main()
