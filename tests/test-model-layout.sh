#!/bin/sh
# The tensor names and shapes t3d's configs need are exactly MONAI's 3-D ResNet state_dict
# (behind "vision.") and Hugging Face's BertModel without pooler (behind "text."), so those
# checkpoints convert by renaming. Skips (77) when T3D_PYTHON lacks monai or transformers.
set -u
t3d="${T3D_BUILDDIR:-.}/t3d"
py="${T3D_PYTHON:-python3}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-layout.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! "$py" -c 'import torch, monai, transformers' 2>/dev/null; then
  echo "SKIP: $py lacks torch, monai or transformers (tools/requirements-test.txt)"
  exit 77
fi
for cfg in t3d-tiny t3d-r50; do
  "$t3d" model-init --config "$cfg" --list > "$tmp/$cfg.txt" || exit 1
done
exec "$py" - "$tmp" <<'PY'
import json, sys, warnings
warnings.filterwarnings("ignore")
from monai.networks.nets import ResNet
from transformers import BertConfig, BertModel

tmp = sys.argv[1]
def listed(name):
    out = {}
    for line in open(f"{tmp}/{name}.txt"):
        p = line.split()
        out[p[0]] = tuple(int(x) for x in p[1:])
    return out

def compare(what, ref, mine):
    ref = {k: tuple(v.shape) for k, v in ref.state_dict().items()
           if not k.endswith("num_batches_tracked") and k != "embeddings.position_ids"}
    bad = [f"  {k}: reference {ref.get(k)}, t3d {mine.get(k)}" for k in sorted(set(ref) | set(mine))
           if ref.get(k) != mine.get(k)]
    print(f"{what}: {len(ref)} reference tensors, {len(mine)} t3d tensors, {len(bad)} differences")
    for b in bad[:20]:
        print(b)
    return not bad

ok = True
cfgs = {"t3d-tiny": ("basic", [1, 1, 1, 1], [8, 16, 32, 64]),
        "t3d-r50": ("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512])}
for name, (block, layers, widths) in cfgs.items():
    mine = listed(name)
    vision = {k[7:]: v for k, v in mine.items() if k.startswith("vision.")}
    text = {k[5:]: v for k, v in mine.items() if k.startswith("text.")}
    ref = ResNet(block=block, layers=layers, block_inplanes=widths, spatial_dims=3, n_input_channels=1,
                 conv1_t_size=7, conv1_t_stride=2, shortcut_type="B", feed_forward=False)
    ok &= compare(f"{name} vision vs MONAI ResNet", ref, vision)
    emb = text["embeddings.word_embeddings.weight"]
    pos = text["embeddings.position_embeddings.weight"][0]
    inter = text["encoder.layer.0.intermediate.dense.weight"][0]
    nlayers = 1 + max(int(k.split(".")[2]) for k in text if k.startswith("encoder.layer."))
    heads = {128: 2, 768: 12}[emb[1]]
    bert = BertModel(BertConfig(vocab_size=emb[0], hidden_size=emb[1], num_hidden_layers=nlayers,
                                num_attention_heads=heads, intermediate_size=inter, max_position_embeddings=pos,
                                type_vocab_size=2), add_pooling_layer=False)
    ok &= compare(f"{name} text vs HF BertModel", bert, text)
sys.exit(0 if ok else 1)
PY
