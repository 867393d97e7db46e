"""Export a trained T3DModel straight to a t3d model file: the tensors the C engine loads
(vision, decoder, projections, logit_scale, BERT without pooler) plus the template's config,
vocabulary and classes and the findings with their prompt pairs. The TMA head is training-only
and not written. Also a command: python -m train.export --ckpt final.pt --template T -o OUT.
Not a converter of foreign checkpoints (tools/convert-*.py)."""
import argparse
import json

import torch

from train.model import T3DModel, exported_state, load_weights
import t3d_safetensors as st  # noqa: E402  (path set by train.model)


def export(model, template, out, findings=None, extra_meta=None):
    _, meta = st.read(template)
    keep = {k: v for k, v in meta.items() if k in ("t3d.config", "t3d.vocab", "t3d.classes", "t3d.findings")}
    if findings is not None:
        keep["t3d.findings"] = st.json_meta(findings)
    for k, v in (extra_meta or {}).items():
        keep[k] = v
    tensors = {k: v.detach().float().cpu() for k, v in exported_state(model).items()}
    st.write(out, tensors, keep)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--findings", help="JSON list of {name, positive, negative}")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    from train.data import read_model_meta
    cfg = read_model_meta(a.template)[0]
    ck = torch.load(a.ckpt, map_location="cpu")
    model = T3DModel(cfg, prototypes=ck["args"].get("prototypes", 32))
    load_weights(model, ck["model"])
    export(model, a.template, a.output, json.load(open(a.findings)) if a.findings else None)


if __name__ == "__main__":
    main()
