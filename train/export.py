"""Export a trained T3DModel straight to a t3d model file: the tensors the C engine loads
(vision, decoder, projections, logit_scale, BERT without pooler) plus the template's config,
vocabulary and classes and the findings with their prompt pairs. The TMA head is training-only
and not written. With a calibration set (the training cases' cache), also the familiarity
reference the C engine checks every series against: calib.reference (their embeddings) and
t3d.calibration (the nearest-neighbour cosine threshold, from held-out cases when given).
Also a command:
  python -m train.export --ckpt final.pt --template T [--calibrate CACHE --calibrate-data DIR
      [--calibrate-holdout CACHE --calibrate-holdout-data DIR]] -o OUT
Not a converter of foreign checkpoints (tools/convert-*.py)."""
import argparse
import json

import torch

from train.model import T3DModel, exported_state, load_weights
import t3d_safetensors as st  # noqa: E402  (path set by train.model)


@torch.no_grad()
def embed(model, x, batch=8):
    """L2-normalised embeddings [N, D] of x [N, 1, Z, Y, X] (cases as the engine preprocesses them)."""
    was = model.training
    model.eval()
    out = torch.cat([model.encode_volume(x[i:i + batch], segment=False)[0] for i in range(0, len(x), batch)])
    model.train(was)
    return out


def familiarity_reference(model, x, quantile=0.01, holdout=None):
    """(reference [N, D], threshold, nearest): the embeddings of the training cases x, and the
    cosine threshold that a fraction 1 - quantile of cases reach to their nearest reference case.
    Those cases are holdout [M, 1, Z, Y, X] (unseen cases of the training distribution: the sound
    estimate, since a model's own training cases lie closer to each other than new ones do) or,
    without it, the training cases themselves, leaving each one out. nearest: their cosines. The
    engine calls a series familiar when its nearest cosine to the reference reaches the threshold."""
    if len(x) < 2:
        raise ValueError("the familiarity reference needs at least 2 cases")
    ref = embed(model, x)
    if holdout is not None and len(holdout):
        nearest = (embed(model, holdout) @ ref.t()).max(dim=1).values
    else:
        sim = ref @ ref.t()
        sim.fill_diagonal_(-2)
        nearest = sim.max(dim=1).values
    return ref, float(torch.quantile(nearest, quantile)), nearest


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


def calibration_from(model, cache, data, quantile=0.01, holdout_cache=None, holdout_data=None):
    """(reference, metadata) for export() from cached case sets (train.data.CaseSet): the training
    cases, and optionally held-out cases for the threshold."""
    from train.data import CaseSet
    cases = CaseSet(cache, data)
    held = CaseSet(holdout_cache, holdout_data) if holdout_cache else None
    ref, thr, nearest = familiarity_reference(model, cases.x, quantile, held.x if held else None)
    meta = {"threshold": thr, "quantile": quantile, "cases": len(cases), "nearest_median": float(nearest.median()),
            "source": str(data)}
    meta["threshold_from"] = f"{len(held)} held-out cases ({holdout_data})" if held else "leave-one-out"
    return ref, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True)
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
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    if bool(a.calibrate) != bool(a.calibrate_data) or bool(a.calibrate_holdout) != bool(a.calibrate_holdout_data):
        ap.error("--calibrate and --calibrate-data go together, as do the --calibrate-holdout options")
    if a.calibrate_holdout and not a.calibrate:
        ap.error("--calibrate-holdout needs --calibrate")
    torch.set_num_threads(a.threads)
    from train.data import read_model_meta
    cfg = read_model_meta(a.template)[0]
    ck = torch.load(a.ckpt, map_location="cpu")
    model = T3DModel(cfg, prototypes=ck["args"].get("prototypes", 32))
    load_weights(model, ck["model"])
    calib = calibration_from(model, a.calibrate, a.calibrate_data, a.calibrate_quantile, a.calibrate_holdout,
                             a.calibrate_holdout_data) if a.calibrate else None
    export(model, a.template, a.output, json.load(open(a.findings)) if a.findings else None, calibration=calib)


if __name__ == "__main__":
    main()
