#!/usr/bin/env python3
"""PyTorch peer of `t3d bench --device cuda`: the same network (MONAI ResNet + our decoder and
projection from tests/reference/t3d_reference.py; Hugging Face BertModel for the text row) on the
same GPU, timed in every mode PyTorch offers that we compare against, and the best kept per row.

Rows: encoder, encoder+segmentation, text (BERT at --tokens tokens + projection), and end to end
(host HU volume -> GPU -> HU window normalisation -> encoder + decoder -> argmax -> host labels).
Modes: fp32, tf32, bf16 (autocast), each also with channels_last_3d for the vision rows; eager for
every mode, then torch.compile (default mode; max-autotune is not used: it autotunes every 3-D
convolution for many minutes) for the --compile-best best eager modes of each row. cuDNN
benchmark mode is on. Time: CUDA-synchronised wall ms, best of --repeat after --warmup runs.
Memory: torch.cuda.max_memory_allocated over the timed runs of that mode (weights included).
Prints one JSON line per measurement and, with --json FILE, writes all of them plus the best per
row. Exits 77 when torch has no CUDA device. Not a correctness check."""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))


def build_rows(cfg, shape, tokens):
    """{row: (make_model(), make_input(), step(model, x))}, each built on demand."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from t3d_reference import T3DVision, projection

    d, h, w = shape

    def vision():
        return T3DVision(cfg).eval().cuda()

    def vol():
        return torch.rand(1, 1, d, h, w, device="cuda")

    def enc(m, x):
        return m.vision(x)

    def seg(m, x):
        return m.seg(m.pyramid(x))

    hu = (np.random.default_rng(1).random((d, h, w), dtype=np.float32) * 2000 - 1000)
    pp = cfg.get("preprocess", {})
    lo, hi = float(pp.get("hu_min", -1000)), float(pp.get("hu_max", 1000))

    def e2e_in():
        return hu  # a host array: the step uploads it

    def e2e(m, x):
        t = torch.from_numpy(x).cuda(non_blocking=False)
        t = ((t.clamp(lo, hi) - lo) / (hi - lo)).view(1, 1, d, h, w)
        p = m.pyramid(t)  # one channel: NCDHW and channels_last_3d are the same bytes
        pooled = p[5].mean(dim=(2, 3, 4))
        F.normalize(m.vision_proj(pooled), dim=-1)
        return m.seg(p).argmax(1).to(torch.uint8).cpu()

    def text():
        from transformers import BertConfig, BertModel
        t = cfg["text"]
        bert = BertModel(BertConfig(vocab_size=t["vocab_size"], hidden_size=t["hidden"],
                                    num_hidden_layers=t["layers"], num_attention_heads=t["heads"],
                                    intermediate_size=t["intermediate"],
                                    max_position_embeddings=t["max_positions"],
                                    type_vocab_size=t["type_vocab_size"], layer_norm_eps=t["layer_norm_eps"]),
                         add_pooling_layer=False)
        proj = projection(t["hidden"], cfg["projection"]["hidden"], cfg["projection"]["dim"])
        return torch.nn.ModuleDict({"bert": bert, "proj": proj}).eval().cuda()

    def text_in():
        t = cfg["text"]
        return torch.randint(5, t["vocab_size"], (1, min(tokens, t["max_positions"])), device="cuda")

    def text_step(m, ids):
        hcls = m["bert"](input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[:, 0]
        return F.normalize(m["proj"](hcls), dim=-1)

    rows = {"encoder": (vision, vol, enc), "segment": (vision, vol, seg), "text": (text, text_in, text_step)}
    if "segmentation" in cfg:
        rows["e2e"] = (vision, e2e_in, e2e)
    else:
        del rows["segment"]
    return rows


def measure(row, spec, mode, compiled, a):
    import torch
    make_model, make_input, step = spec
    torch.backends.cudnn.benchmark = True
    tf32 = mode.startswith("tf32")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    bf16 = mode.startswith("bf16")
    cl = mode.endswith("+cl3d")
    model = make_model()
    x = make_input()
    if cl:
        model = model.to(memory_format=torch.channels_last_3d)
        if torch.is_tensor(x) and x.dim() == 5:
            x = x.to(memory_format=torch.channels_last_3d)
    fn = step
    if compiled:
        fn = torch.compile(step)  # default mode

    def run():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            fn(model, x)
        torch.cuda.synchronize()

    t0 = time.perf_counter()
    for _ in range(a.warmup):
        run()
    warm_s = time.perf_counter() - t0
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    res = {"row": row, "mode": mode, "exec": "compile" if compiled else "eager", "ms": min(times),
           "ms_all": times, "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
           "reserved_mib": torch.cuda.max_memory_reserved() / 2**20, "warmup_s": warm_s}
    del model, x, fn
    torch.cuda.empty_cache()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="config JSON ({\"model\": ...}, e.g. from t3d bench --json)")
    ap.add_argument("--shape", default="160,224,224", help="input D,H,W")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rows", default="encoder,segment,text,e2e")
    ap.add_argument("--modes", default="fp32,tf32,bf16,fp32+cl3d,tf32+cl3d,bf16+cl3d")
    ap.add_argument("--compile-best", type=int, default=2,
                    help="torch.compile the N best eager modes of each row (0: no compile)")
    ap.add_argument("--json", help="write every measurement and the best per row here")
    a = ap.parse_args()

    import torch
    if not torch.cuda.is_available():
        print("SKIP: torch %s sees no CUDA device" % torch.__version__)
        return 77
    cfg = json.load(open(a.config))
    cfg = cfg.get("config", cfg).get("model", cfg)
    shape = [int(v) for v in a.shape.split(",")]
    rows = build_rows(cfg, shape, a.tokens)
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "gpu": torch.cuda.get_device_name(0), "shape": shape, "tokens": a.tokens}
    print(json.dumps(info), flush=True)
    results, best = [], {}
    for row in [r for r in a.rows.split(",") if r in rows]:
        modes = [m for m in a.modes.split(",") if row != "text" or not m.endswith("+cl3d")]
        eager = []
        for mode in modes:
            try:
                r = measure(row, rows[row], mode, False, a)
            except Exception as e:  # a mode PyTorch cannot run here is reported, not fatal
                r = {"row": row, "mode": mode, "exec": "eager", "error": repr(e)[:300]}
            print(json.dumps(r), flush=True)
            results.append(r)
            if "ms" in r:
                eager.append(r)
        if hasattr(torch, "compile") and a.compile_best > 0:
            for r0 in sorted(eager, key=lambda r: r["ms"])[:a.compile_best]:
                try:
                    r = measure(row, rows[row], r0["mode"], True, a)
                except Exception as e:
                    r = {"row": row, "mode": r0["mode"], "exec": "compile", "error": repr(e)[:300]}
                print(json.dumps(r), flush=True)
                results.append(r)
        ok = [r for r in results if r["row"] == row and "ms" in r]
        if ok:
            best[row] = min(ok, key=lambda r: r["ms"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": info, "results": results, "best": best}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
