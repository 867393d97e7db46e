#!/usr/bin/env python3
"""Checks tools/convert-resnet.py, tools/convert-bert.py and tools/t3d-assemble.py on checkpoints
saved here with torch (tests/test-converters.sh): a MONAI ResNet state_dict (torch.save), a
MedicalNet-style one ({"state_dict": ...} with "module." prefixes, no downsample bias, conv_seg
head), Hugging Face BERT folders in both weight formats (one with the "bert." prefix and MLM/NSP
heads); reads every output back and compares tensors with the originals, and checks that wrong
or corrupt inputs fail with a clear message. Prints the assembled model paths for `t3d
model-info --check`. Not a parity test: no network is run."""
import json
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
import t3d_safetensors as st  # noqa: E402

failures = 0


def check(cond, what):
    global failures
    print(f"{'ok  ' if cond else 'FAIL'} {what}")
    if not cond:
        failures += 1


def tool(name, *args):
    return subprocess.run([sys.executable, os.path.join(TOOLS, name), *args], capture_output=True, text=True)


def expect_ok(name, *args):
    r = tool(name, *args)
    check(r.returncode == 0, f"{name} {' '.join(os.path.basename(a) for a in args)}: exit {r.returncode} "
                             f"{r.stderr.strip()}")
    return r


def expect_error(what, needle, name, *args, output=None):
    r = tool(name, *args)
    msg = r.stderr.strip()
    check(r.returncode != 0 and needle in msg and "Traceback" not in msg,
          f"{what}: exit {r.returncode}, message {msg!r} (want one containing {needle!r})")
    if output:
        check(not os.path.exists(output), f"{what}: no output file left behind")


def same(tensors, originals, prefix, what):
    """Every original tensor arrives under prefix + name with equal values (float32)."""
    bad = [k for k, v in originals.items()
           if prefix + k not in tensors or not np.array_equal(tensors[prefix + k], st.as_float32(v))]
    check(not bad, f"{what}: {len(originals)} tensors equal the originals" + (f" (first bad: {bad[0]})" if bad else ""))


def randomize(module, g):
    with torch.no_grad():
        for name, p in list(module.named_parameters()) + list(module.named_buffers()):
            if p.is_floating_point():
                p.copy_(torch.rand(p.shape, generator=g) + 0.5 if "running_var" in name else
                        torch.randn(p.shape, generator=g) * 0.1)


def resnets(d, g):
    from monai.networks.nets import ResNet
    # MONAI layout, bottleneck, bias_downsample=True (MONAI's default)
    monai_net = ResNet(block="bottleneck", layers=[1, 2, 1, 1], block_inplanes=[8, 16, 32, 64], spatial_dims=3,
                       n_input_channels=1, conv1_t_size=7, conv1_t_stride=2, num_classes=3)
    randomize(monai_net, g)
    sd = monai_net.state_dict()
    torch.save(sd, os.path.join(d, "monai.pt"))
    expect_ok("convert-resnet.py", os.path.join(d, "monai.pt"), "-o", os.path.join(d, "vision-monai.safetensors"))
    t, meta = st.read(os.path.join(d, "vision-monai.safetensors"))
    vc = json.loads(meta["t3d.vision_config"])
    check(vc == {"arch": "resnet", "block": "bottleneck", "layers": [1, 2, 1, 1], "widths": [8, 16, 32, 64],
                 "in_channels": 1, "conv1_kernel": 7, "conv1_stride": 2, "maxpool": True},
          f"MONAI: detected config {vc}")
    kept = {k: v for k, v in sd.items() if not k.startswith("fc.") and "num_batches_tracked" not in k}
    same(t, kept, "vision.", "MONAI")
    check("vision.layer1.0.downsample.0.bias" in t, "MONAI: downsample bias kept")
    check(not any(k.startswith("vision.fc") for k in t), "MONAI: fc head dropped")

    # MedicalNet style: basic blocks, no downsample bias, DataParallel prefixes, wrapped, conv_seg head
    med = ResNet(block="basic", layers=[2, 1, 1, 1], block_inplanes=[16, 32, 64, 128], spatial_dims=3,
                 n_input_channels=1, conv1_t_size=7, conv1_t_stride=2, bias_downsample=False, feed_forward=False)
    randomize(med, g)
    msd = {"module." + k: v for k, v in med.state_dict().items()}
    msd["module.conv_seg.0.weight"] = torch.randn(32, 128, 3, 3, 3)
    torch.save({"epoch": 200, "state_dict": msd}, os.path.join(d, "medicalnet.pth"))
    expect_ok("convert-resnet.py", os.path.join(d, "medicalnet.pth"), "-o",
              os.path.join(d, "vision-med.safetensors"))
    t, meta = st.read(os.path.join(d, "vision-med.safetensors"))
    vc = json.loads(meta["t3d.vision_config"])
    check(vc["block"] == "basic" and vc["layers"] == [2, 1, 1, 1] and vc["widths"] == [16, 32, 64, 128],
          f"MedicalNet: detected config {vc}")
    same(t, {k: v for k, v in med.state_dict().items() if "num_batches_tracked" not in k}, "vision.", "MedicalNet")
    check(not any("downsample.0.bias" in k or "conv_seg" in k for k in t), "MedicalNet: no downsample bias, no conv_seg")
    return monai_net


def berts(d, g):
    from transformers import BertConfig, BertForPreTraining, BertModel
    cfg = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(35)]
    vocab[10] = "w0"  # repeated token: HF maps "w0" to id 10, id 5 is unreachable
    folders = {}
    for fmt, cls in (("safetensors", BertModel), ("bin", BertForPreTraining)):
        torch.manual_seed(len(folders))
        m = cls(cfg)
        randomize(m, g)
        f = os.path.join(d, f"bert-{fmt}")
        m.save_pretrained(f, safe_serialization=(fmt == "safetensors"))
        with open(os.path.join(f, "vocab.txt"), "w") as fh:
            fh.write("\n".join(vocab) + "\n")
        with open(os.path.join(f, "tokenizer_config.json"), "w") as fh:
            json.dump({"do_lower_case": False}, fh)
        out = os.path.join(d, f"text-{fmt}.safetensors")
        expect_ok("convert-bert.py", f, "-o", out)
        t, meta = st.read(out)
        sd = m.state_dict()
        if fmt == "bin":
            sd = {k[5:]: v for k, v in sd.items() if k.startswith("bert.")}
        kept = {k: v for k, v in sd.items() if not k.startswith("pooler.") and not k.endswith("position_ids")}
        same(t, kept, "text.", f"BERT ({fmt}{', bert. prefix, MLM/NSP heads' if fmt == 'bin' else ''})")
        check(not any("pooler" in k or k.startswith("text.cls") for k in t), f"BERT ({fmt}): pooler and heads dropped")
        tc = json.loads(meta["t3d.text_config"])
        check(tc["hidden"] == 32 and tc["layers"] == 2 and tc["heads"] == 4 and tc["vocab_size"] == 40 and
              tc["lowercase"] is False and tc["strip_accents"] is False, f"BERT ({fmt}): text config {tc}")
        want = list(vocab)
        want[5] = "[t3d duplicate 5]"
        check(json.loads(meta["t3d.vocab"]) == want, f"BERT ({fmt}): vocabulary (repeat made unreachable)")
        folders[fmt] = f
    return folders


def assemble(d):
    findings = [{"name": "nodule", "positive": "a lung nodule", "negative": "no lung nodule"},
                {"name": "effusion", "positive": "pleural effusion", "negative": "no pleural effusion"}]
    with open(os.path.join(d, "findings.json"), "w") as fh:
        json.dump(findings, fh)
    vis, txt = os.path.join(d, "vision-monai.safetensors"), os.path.join(d, "text-safetensors.safetensors")
    common = ["--vision", vis, "--text", txt, "--findings", os.path.join(d, "findings.json"),
              "--classes", "background,lung,liver", "--name", "conv-test", "--projection-dim", "16",
              "--projection-hidden", "24", "--decoder-widths", "32,16,8,8,4", "--spacing", "2,2,3",
              "--shape", "64,64,64"]
    # 1. heads and decoder initialised randomly
    out1 = os.path.join(d, "random-heads.t3d")
    expect_ok("t3d-assemble.py", *common, "--random-init", "-o", out1)
    t, meta = st.read(out1)
    cfg = json.loads(meta["t3d.config"])["model"]
    check(meta["t3d.format_version"] == "1", "assembled: t3d.format_version 1")
    check(json.loads(meta["t3d.findings"]) == findings, "assembled: findings")
    check(json.loads(meta["t3d.classes"]) == ["background", "lung", "liver"], "assembled: classes")
    check(cfg["segmentation"] == {"classes": 3, "decoder_widths": [32, 16, 8, 8, 4]}
          and cfg["projection"] == {"dim": 16, "hidden": 24}, "assembled: config")
    vt, _ = st.read(vis)
    tt, _ = st.read(txt)
    same(t, vt, "", "assembled: vision tensors")
    same(t, tt, "", "assembled: text tensors")
    # 2. given heads and decoder are copied, not re-initialised
    g = np.random.default_rng(5)
    heads = {n: g.standard_normal(t[n].shape).astype(np.float32) for n in t
             if n.startswith(("vision_proj.", "text_proj.")) or n == "logit_scale"}
    seg = {n: g.standard_normal(t[n].shape).astype(np.float32) for n in t if n.startswith("seg.")}
    st.write(os.path.join(d, "heads.safetensors"), heads)
    st.write(os.path.join(d, "seg.safetensors"), seg)
    out2 = os.path.join(d, "given-heads.t3d")
    expect_ok("t3d-assemble.py", *common, "--heads", os.path.join(d, "heads.safetensors"), "--seg",
              os.path.join(d, "seg.safetensors"), "-o", out2)
    t2, _ = st.read(out2)
    same(t2, heads, "", "assembled: given projection heads")
    same(t2, seg, "", "assembled: given decoder")
    print("MODEL", out1)
    print("MODEL", out2)
    print("FRAGMENT", vis)
    print("FRAGMENT", txt)
    return common


def errors(d, common):
    # truncated checkpoint
    with open(os.path.join(d, "monai.pt"), "rb") as fh:
        blob = fh.read()
    with open(os.path.join(d, "truncated.pt"), "wb") as fh:
        fh.write(blob[:len(blob) // 2])
    out = os.path.join(d, "never.safetensors")
    expect_error("truncated .pt", "not a readable PyTorch checkpoint", "convert-resnet.py",
                 os.path.join(d, "truncated.pt"), "-o", out, output=out)
    # a BERT checkpoint given to the ResNet converter
    expect_error("BERT weights to convert-resnet", "no conv1.weight", "convert-resnet.py",
                 os.path.join(d, "bert-bin", "pytorch_model.bin"), "-o", out, output=out)
    # a ResNet missing a block tensor
    sd = torch.load(os.path.join(d, "monai.pt"))
    del sd["layer2.1.conv2.weight"]
    torch.save(sd, os.path.join(d, "partial.pt"))
    expect_error("ResNet missing a tensor", "layer2.1.conv2.weight missing", "convert-resnet.py",
                 os.path.join(d, "partial.pt"), "-o", out, output=out)
    # corrupt model.safetensors in an HF folder
    bad = os.path.join(d, "bert-corrupt")
    os.makedirs(bad, exist_ok=True)
    for name in ("config.json", "vocab.txt"):
        with open(os.path.join(d, "bert-safetensors", name), "rb") as src, open(os.path.join(bad, name), "wb") as dst:
            dst.write(src.read())
    with open(os.path.join(bad, "model.safetensors"), "wb") as fh:
        fh.write(b"\xff" * 64)
    expect_error("corrupt model.safetensors", "header length", "convert-bert.py", bad, "-o", out, output=out)
    # config.json that does not match the weights
    with open(os.path.join(bad, "config.json")) as fh:
        c = json.load(fh)
    c["intermediate_size"] = 48
    with open(os.path.join(bad, "config.json"), "w") as fh:
        json.dump(c, fh)
    os.replace(os.path.join(d, "bert-safetensors", "model.safetensors"), os.path.join(bad, "model.safetensors"))
    expect_error("config.json shape mismatch", "config.json implies [48, 32]", "convert-bert.py", bad, "-o", out,
                 output=out)
    # fragments swapped
    expect_error("text fragment as --vision", "not a vision fragment", "t3d-assemble.py",
                 "--vision", os.path.join(d, "text-bin.safetensors"), "--text", os.path.join(d, "text-bin.safetensors"),
                 "--random-init", "-o", out, output=out)
    # heads absent without --random-init
    expect_error("absent heads without --random-init", "pass --random-init", "t3d-assemble.py", *common, "-o", out,
                 output=out)


def main():
    d = sys.argv[1]
    torch.set_grad_enabled(False)
    g = torch.Generator().manual_seed(7)
    resnets(d, g)
    berts(d, g)
    common = assemble(d)
    errors(d, common)
    print(f"converters_check: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
