#!/usr/bin/env python3
"""PyTorch side of tests/bench-text.sh: times Hugging Face BertModel (eval, no grad) on one
sequence of T tokens with the text config of a t3d config JSON and random weights, using the
same token ids as tests/bench-text, at a given thread count; prints median and best ms and peak
RSS. Not a parity check (tests/test-text-parity.sh is)."""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="t3d config JSON ({\"model\": ...})")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    from transformers import BertConfig, BertModel
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    with open(a.config) as f:
        cfg = json.load(f)["model"]
    tc, pc = cfg["text"], cfg["projection"]
    model = BertModel(BertConfig(vocab_size=tc["vocab_size"], hidden_size=tc["hidden"],
                                 num_hidden_layers=tc["layers"], num_attention_heads=tc["heads"],
                                 intermediate_size=tc["intermediate"], max_position_embeddings=tc["max_positions"],
                                 type_vocab_size=tc["type_vocab_size"], layer_norm_eps=tc["layer_norm_eps"]),
                      add_pooling_layer=False).eval()
    proj = nn.Sequential(nn.Linear(tc["hidden"], pc["hidden"]), nn.ReLU(), nn.Linear(pc["hidden"], pc["dim"]))
    T = min(a.tokens, tc["max_positions"], 256)
    span = max(tc["vocab_size"] - 1000, 1)
    ids = [(1000 + (i * 7919) % span) if 1000 + (i * 7919) % span < tc["vocab_size"] else i % tc["vocab_size"]
           for i in range(T)]
    ids[0], ids[-1] = 2, 3  # [CLS], [SEP] of the t3d default vocabulary
    x = torch.tensor([ids])
    m = torch.ones_like(x)
    times = []
    for r in range(a.reps + 1):
        t0 = time.perf_counter()
        cls = model(input_ids=x, attention_mask=m).last_hidden_state[:, 0]
        F.normalize(proj(cls), dim=-1)
        if r:
            times.append((time.perf_counter() - t0) * 1e3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch text: torch {torch.__version__} BERT {tc['layers']} layers hidden {tc['hidden']}, {T} tokens, "
          f"{torch.get_num_threads()} threads: median {statistics.median(times):.1f} ms, best {min(times):.1f} ms, "
          f"peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
