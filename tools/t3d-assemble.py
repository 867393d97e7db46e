#!/usr/bin/env python3
"""Assembles a complete t3d model file from a vision fragment (tools/convert-resnet.py), a text
fragment (tools/convert-bert.py), optional projection/logit-scale weights and segmentation
weights (random initialisation when absent and --random-init is given), findings with their
prompt pairs, segmentation class names and preprocessing settings. Writes the metadata of
core/model/modelfile.h (t3d.format_version "1", t3d.config, t3d.vocab, t3d.findings, t3d.classes);
check the result with `t3d model-info FILE --check`.
Not a trainer: random heads are initialisers only, as `t3d model-init` would make them.

Example (a MedicalNet ResNet-50 and a Hugging Face BERT folder):
  tools/convert-resnet.py resnet_50_23dataset.pth -o vision.safetensors
  tools/convert-bert.py ./bert-base-uncased -o text.safetensors
  tools/t3d-assemble.py --vision vision.safetensors --text text.safetensors --random-init \
      --findings findings.json --classes background,lung,liver,kidney,spleen,lesion \
      --name my-t3d -o my-t3d.safetensors
  t3d model-info my-t3d.safetensors --check"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import t3d_safetensors as st  # noqa: E402


class AssembleError(Exception):
    pass


def read_fragment(path, kind):
    try:
        tensors, meta = st.read(path)
    except (st.SafetensorsError, OSError) as e:
        raise AssembleError(str(e)) from None
    if meta.get("t3d.fragment") != kind:
        raise AssembleError(f"{path}: not a {kind} fragment (t3d.fragment is {meta.get('t3d.fragment')!r}); "
                            f"make it with tools/convert-{'resnet' if kind == 'vision' else 'bert'}.py")
    prefix = kind + "."
    bad = [n for n in tensors if not n.startswith(prefix)]
    if bad:
        raise AssembleError(f"{path}: tensor {bad[0]} does not belong to a {kind} fragment")
    return tensors, meta


def read_weights(path, prefixes):
    try:
        tensors, _ = st.read(path)
    except (st.SafetensorsError, OSError) as e:
        raise AssembleError(str(e)) from None
    out = {k: v for k, v in tensors.items() if any(k == p or k.startswith(p + ".") for p in prefixes)}
    if not out:
        raise AssembleError(f"{path}: no tensors named {', '.join(p + '.*' for p in prefixes)}")
    return out


def stage_channels(vc):
    e = 4 if vc["block"] == "bottleneck" else 1
    return [w * e for w in vc["widths"]]


def head_specs(cfg):
    """(name, shape, init, fan_in, fan_out) of the projection, segmentation and logit-scale tensors
    (mirrors t3d_model_config_tensors in core/model/modelconfig.c)."""
    vc, tc, pc = cfg["vision"], cfg["text"], cfg["projection"]
    c4 = stage_channels(vc)[3]
    specs = []

    def linear(base, out, cin):
        specs.append((base + ".weight", (out, cin), "linear", cin, out))
        specs.append((base + ".bias", (out,), "linear", cin, out))
    linear("vision_proj.0", pc["hidden"], c4)
    linear("vision_proj.2", pc["dim"], pc["hidden"])
    linear("text_proj.0", pc["hidden"], tc["hidden"])
    linear("text_proj.2", pc["dim"], pc["hidden"])
    if "segmentation" in cfg:
        sc, st_ch = cfg["segmentation"], stage_channels(vc)
        skips = [st_ch[2], st_ch[1], st_ch[0], vc["widths"][0], vc["in_channels"]]
        cin = c4
        for i, d in enumerate(sc["decoder_widths"]):
            specs.append((f"seg.blocks.{i}.up.weight", (cin, d, 2, 2, 2), "he", cin * 8, d * 8))
            specs.append((f"seg.blocks.{i}.up.bias", (d,), "zeros", 0, 0))
            specs.append((f"seg.blocks.{i}.conv.weight", (d, d + skips[i], 3, 3, 3), "he", (d + skips[i]) * 27, d * 27))
            for p, init in (("weight", "ones"), ("bias", "zeros"), ("running_mean", "zeros"), ("running_var", "ones")):
                specs.append((f"seg.blocks.{i}.bn.{p}", (d,), init, 0, 0))
            cin = d
        specs.append(("seg.head.weight", (sc["classes"], cin, 1, 1, 1), "linear", cin, sc["classes"]))
        specs.append(("seg.head.bias", (sc["classes"],), "linear", cin, sc["classes"]))
    specs.append(("logit_scale", (1,), "logit_scale", 0, 0))
    return specs


def init_tensor(rng, shape, init, fan_in, fan_out, logit_scale_init):
    if init == "zeros":
        return np.zeros(shape, np.float32)
    if init == "ones":
        return np.ones(shape, np.float32)
    if init == "logit_scale":
        return np.full(shape, logit_scale_init, np.float32)
    if init == "he":  # N(0, 2/fan_out), MONAI's kaiming_normal_(mode="fan_out")
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_out)).astype(np.float32)
    bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def read_classes(arg):
    if os.path.exists(arg):
        with open(arg, encoding="utf-8") as f:
            text = f.read()
        try:
            names = json.loads(text)
        except json.JSONDecodeError:
            names = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        names = [s.strip() for s in arg.split(",")]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) and n for n in names):
        raise AssembleError(f"--classes {arg}: need at least 2 non-empty class names, background first")
    return names


def read_findings(path):
    try:
        with open(path, encoding="utf-8") as f:
            v = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise AssembleError(f"--findings {path}: {e}") from None
    if isinstance(v, dict):
        v = v.get("findings")
    names = set()
    if not isinstance(v, list):
        raise AssembleError(f"--findings {path}: expected a JSON array of {{name, positive, negative}}")
    for i, f in enumerate(v):
        if not isinstance(f, dict) or not all(isinstance(f.get(k), str) and f.get(k) for k in
                                              ("name", "positive", "negative")):
            raise AssembleError(f"--findings {path}: entry {i} needs non-empty strings name, positive, negative")
        if f["name"] in names:
            raise AssembleError(f"--findings {path}: finding {f['name']!r} listed twice")
        names.add(f["name"])
    return [{"name": f["name"], "positive": f["positive"], "negative": f["negative"]} for f in v]


def floats(text, n, what):
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        v = []
    if len(v) != n:
        raise AssembleError(f"{what} {text!r}: expected {n} comma-separated numbers")
    return v


def assemble(a):
    vt, vmeta = read_fragment(a.vision, "vision")
    tt, tmeta = read_fragment(a.text, "text")
    try:
        vc = json.loads(vmeta["t3d.vision_config"])
        tc = json.loads(tmeta["t3d.text_config"])
        vocab = json.loads(tmeta["t3d.vocab"])
    except (KeyError, json.JSONDecodeError) as e:
        raise AssembleError(f"fragment metadata incomplete or not JSON: {e}") from None
    heads = read_weights(a.heads, ["vision_proj", "text_proj", "logit_scale"]) if a.heads else {}
    seg = read_weights(a.seg, ["seg"]) if a.seg else {}

    # projection sizes: from the given heads, else the options
    dim, hidden = a.projection_dim, a.projection_hidden
    if "text_proj.2.weight" in heads:
        dim, hidden = (int(x) for x in heads["text_proj.2.weight"].shape)
    cfg = {"name": a.name, "vision": vc, "text": tc, "projection": {"dim": dim, "hidden": hidden}}
    classes = read_classes(a.classes) if a.classes else None
    if classes or seg:
        if not classes:
            raise AssembleError("--seg given without --classes: the class names (background first) are required")
        widths = [int(x) for x in a.decoder_widths.split(",")]
        if seg:
            widths = [int(seg[f"seg.blocks.{i}.up.weight"].shape[1]) if f"seg.blocks.{i}.up.weight" in seg else w
                      for i, w in enumerate(widths)]
        cfg["segmentation"] = {"classes": len(classes), "decoder_widths": widths}
    cfg["preprocess"] = {"spacing_mm": floats(a.spacing, 3, "--spacing"),
                         "shape": [int(x) for x in floats(a.shape, 3, "--shape")],
                         "hu_min": a.hu_min, "hu_max": a.hu_max, "pad_value": a.pad_value}
    cfg["logit_scale_init"] = a.logit_scale_init
    if len(vocab) != tc["vocab_size"]:
        raise AssembleError(f"{a.text}: vocabulary has {len(vocab)} tokens, text config says {tc['vocab_size']}")

    tensors = dict(vt)
    tensors.update(tt)
    rng = np.random.default_rng(a.seed)
    given = dict(heads)
    given.update(seg)
    randomised = []
    for name, shape, init, fin, fout in head_specs(cfg):
        if name in given:
            if tuple(given[name].shape) != shape:
                raise AssembleError(f"tensor {name} has shape {list(given[name].shape)}, the config needs {list(shape)}")
            tensors[name] = st.as_float32(given[name])
        elif a.random_init:
            tensors[name] = init_tensor(rng, shape, init, fin, fout, a.logit_scale_init)
            randomised.append(name)
        else:
            raise AssembleError(f"tensor {name} {list(shape)} not given (--heads / --seg); "
                                "pass --random-init to initialise absent heads randomly")
    extra = sorted(set(given) - set(tensors))
    if extra:
        raise AssembleError(f"tensor {extra[0]} does not fit the assembled config (wrong --classes or widths?)")
    meta = {"t3d.config": st.json_meta({"model": cfg}), "t3d.vocab": st.json_meta(vocab)}
    if classes:
        meta["t3d.classes"] = st.json_meta(classes)
    if a.findings:
        meta["t3d.findings"] = st.json_meta(read_findings(a.findings))
    if randomised:
        meta["t3d.random_init"] = st.json_meta(sorted({n.split(".")[0] for n in randomised}))
    st.write(a.output, tensors, meta)
    return len(tensors), randomised


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vision", required=True, help="vision fragment (tools/convert-resnet.py)")
    ap.add_argument("--text", required=True, help="text fragment (tools/convert-bert.py)")
    ap.add_argument("--heads", help="safetensors with vision_proj.*, text_proj.* and logit_scale")
    ap.add_argument("--seg", help="safetensors with seg.* (segmentation decoder)")
    ap.add_argument("--random-init", action="store_true", help="initialise absent heads/decoder randomly")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--findings", help="JSON array of {name, positive, negative}")
    ap.add_argument("--classes", help="segmentation class names, background first: a, b, ... or a file "
                                      "(JSON array or one per line); omit for a model without segmentation")
    ap.add_argument("--name", default="t3d-custom", help="model name (default t3d-custom)")
    ap.add_argument("--projection-dim", type=int, default=512)
    ap.add_argument("--projection-hidden", type=int, default=2048)
    ap.add_argument("--decoder-widths", default="256,128,64,32,16")
    ap.add_argument("--spacing", default="1.5,1.5,2.0", help="model voxel spacing x,y,z in mm")
    ap.add_argument("--shape", default="160,224,224", help="model grid z,y,x")
    ap.add_argument("--hu-min", type=float, default=-1000.0)
    ap.add_argument("--hu-max", type=float, default=1000.0)
    ap.add_argument("--pad-value", type=float, default=-1000.0)
    ap.add_argument("--logit-scale-init", type=float, default=math.log(1 / 0.07))
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    try:
        n, randomised = assemble(a)
    except (AssembleError, OSError, ValueError) as e:
        print(f"t3d-assemble: {e}", file=sys.stderr)
        return 1
    note = f", {len(randomised)} initialised randomly" if randomised else ""
    print(f"t3d-assemble: {a.output}: {n} tensors{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
