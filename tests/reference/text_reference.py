#!/usr/bin/env python3
"""Hugging Face reference for the T3D text side (tests/test-text-parity.sh): builds a
transformers BertModel with the text config of a t3d config and random weights (LayerNorm
parameters and biases randomised too), saves it as a Hugging Face folder (config.json,
vocab.txt, tokenizer files, model.safetensors or pytorch_model.bin), converts it with OUR
tools/convert-bert.py, assembles a model file with tools/t3d-assemble.py (projection heads from
PyTorch, the rest random), and writes BertTokenizer + BertModel + projection outputs on report
sentences (padded batch of different lengths) for tests/text-parity-tool to compare.
Not a trainer, and not a benchmark (see tests/reference/text_bench.py)."""
import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
import t3d_safetensors as st  # noqa: E402

SENTENCES = [
    "No focal consolidation.",
    "There is a 12 mm spiculated nodule in the right upper lobe, suspicious for malignancy.",
    "Small left pleural effusion with adjacent atelectasis; no pneumothorax.",
    "Heart size is normal. The aorta is of normal calibre.",
    "Mild centrilobular emphysema, predominantly in the upper lobes, and a 4-mm non-calcified nodule "
    "in the lingula (series 3, image 57). Recommend follow-up CT in 12 months per Fleischner criteria.",
    "Café-au-lait résumé: naïve façade, ÉTUDE.",
    "liver",
    "Multiple hypodense hepatic lesions, the largest measuring 3.4 x 2.9 cm in segment VII, "
    "consistent with metastases. The spleen, pancreas, adrenal glands and kidneys are unremarkable. "
    "No lymphadenopathy. Degenerative changes of the thoracolumbar spine without acute fracture. "
    "Impression: hepatic metastatic disease; recommend correlation with prior imaging and tumour markers.",
    "",
    # longer than 256 wordpieces: truncated to max_length with [SEP] kept
    " ".join(["Stable 5 mm ground-glass opacity, right lower lobe (unchanged since 2019-03-14)."] * 20),
]


def bert_config(tc):
    from transformers import BertConfig
    return BertConfig(vocab_size=tc["vocab_size"], hidden_size=tc["hidden"], num_hidden_layers=tc["layers"],
                      num_attention_heads=tc["heads"], intermediate_size=tc["intermediate"],
                      max_position_embeddings=tc["max_positions"], type_vocab_size=tc["type_vocab_size"],
                      layer_norm_eps=tc["layer_norm_eps"], hidden_act="gelu",
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def randomize(model, g):
    """Weights keep BERT's N(0, 0.02) scale; LayerNorm gains/shifts and every bias are random."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def tiny_vision_fragment(out_dir, python):
    """A small MONAI ResNet converted with tools/convert-resnet.py (the text test needs a vision
    fragment only to assemble a complete model file)."""
    from monai.networks.nets import ResNet
    net = ResNet(block="basic", layers=[1, 1, 1, 1], block_inplanes=[16, 32, 64, 128], spatial_dims=3,
                 n_input_channels=1, conv1_t_size=7, conv1_t_stride=2)
    ckpt = os.path.join(out_dir, "resnet.pt")
    torch.save(net.state_dict(), ckpt)
    frag = os.path.join(out_dir, "vision.safetensors")
    run([python, os.path.join(TOOLS, "convert-resnet.py"), ckpt, "-o", frag])
    return frag


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"text_reference: {os.path.basename(cmd[1])} failed with {r.returncode}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="t3d config JSON ({\"model\": ...}) for the text sizes")
    ap.add_argument("--vocab", required=True, help="base vocabulary, one token a line (padded to vocab_size)")
    ap.add_argument("--format", choices=("safetensors", "bin"), default="safetensors")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out", help="output folder")
    a = ap.parse_args()
    from transformers import BertModel, BertTokenizer
    torch.set_grad_enabled(False)
    with open(a.config) as f:
        cfg = json.load(f)["model"]
    tc, pc = cfg["text"], cfg["projection"]
    os.makedirs(a.out, exist_ok=True)
    hf = os.path.join(a.out, "hf")
    os.makedirs(hf, exist_ok=True)

    with open(a.vocab, encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f if line.rstrip("\n")]
    vocab += [f"[unused{i}]" for i in range(tc["vocab_size"] - len(vocab))]
    with open(os.path.join(hf, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    tok = BertTokenizer(os.path.join(hf, "vocab.txt"), do_lower_case=tc["lowercase"],
                        strip_accents=tc["strip_accents"])
    tok.save_pretrained(hf)

    g = torch.Generator().manual_seed(a.seed)
    model = BertModel(bert_config(tc)).eval()  # with its pooler, which the converter must drop
    randomize(model, g)
    model.save_pretrained(hf, safe_serialization=(a.format == "safetensors"))

    text_frag = os.path.join(a.out, "text.safetensors")
    run([sys.executable, os.path.join(TOOLS, "convert-bert.py"), hf, "-o", text_frag])
    vision_frag = tiny_vision_fragment(a.out, sys.executable)

    torch.manual_seed(a.seed + 1)
    text_proj = nn.Sequential(nn.Linear(tc["hidden"], pc["hidden"]), nn.ReLU(), nn.Linear(pc["hidden"], pc["dim"]))
    heads = {f"text_proj.{k}": v for k, v in text_proj.state_dict().items()}
    heads_path = os.path.join(a.out, "heads.safetensors")
    st.write(heads_path, heads)
    model_path = os.path.join(a.out, "model.t3d")
    run([sys.executable, os.path.join(TOOLS, "t3d-assemble.py"), "--vision", vision_frag, "--text", text_frag,
         "--heads", heads_path, "--random-init", "--name", "text-parity-" + cfg["name"],
         "--projection-dim", str(pc["dim"]), "--projection-hidden", str(pc["hidden"]),
         "--spacing", "4,4,4", "--shape", "64,64,64", "-o", model_path])

    max_len = min(256, tc["max_positions"])
    enc = tok(SENTENCES, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    cls = hidden[:, 0]
    emb = F.normalize(text_proj(cls), dim=-1)
    st.write(os.path.join(a.out, "ref.safetensors"),
             {"input_ids": enc["input_ids"].to(torch.int32).numpy(),
              "attention_mask": enc["attention_mask"].to(torch.int32).numpy(),
              "hidden": hidden, "cls": cls, "embedding": emb})
    with open(os.path.join(a.out, "sentences.json"), "w", encoding="utf-8") as f:
        json.dump(SENTENCES, f, ensure_ascii=False)
    print(f"text_reference: {cfg['name']} text ({tc['layers']} layers, hidden {tc['hidden']}), "
          f"{len(SENTENCES)} sentences padded to {enc['input_ids'].shape[1]} tokens, weights as {a.format}")


if __name__ == "__main__":
    main()
