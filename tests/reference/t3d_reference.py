#!/usr/bin/env python3
"""PyTorch reference for the T3D vision side: MONAI's own 3-D ResNet as the encoder, and our
definitions of the segmentation decoder and the projection heads (the layout documented in
core/model/modelconfig.h). Used by tests/test-vision-parity.sh (random weights -> t3d model file +
reference outputs) and by `t3d bench` (PyTorch timing and peak RSS in its own process; the
text row uses Hugging Face's BertModel). Not a trainer; text parity is tested elsewhere."""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import t3d_safetensors as st  # noqa: E402
from peer_bench import more_runs, vmhwm_kib  # noqa: E402  (the run rule and peak RSS, shared with the ONNX peers)


def monai_resnet(vc, bias_downsample):
    from monai.networks.nets import ResNet
    return ResNet(block="bottleneck" if vc["block"] == "bottleneck" else "basic",
                  layers=list(vc["layers"]), block_inplanes=list(vc["widths"]), spatial_dims=3,
                  n_input_channels=vc["in_channels"], conv1_t_size=vc["conv1_kernel"],
                  conv1_t_stride=vc["conv1_stride"], no_max_pool=not vc.get("maxpool", True),
                  shortcut_type="B", feed_forward=False, bias_downsample=bias_downsample)


class DecoderBlock(nn.Module):
    """ConvTranspose3d k2 s2 -> cat(up, skip) -> Conv3d 3^3 (no bias) -> BatchNorm3d -> ReLU."""

    def __init__(self, cin, cout, cskip):
        super().__init__()
        self.up = nn.ConvTranspose3d(cin, cout, kernel_size=2, stride=2)
        self.conv = nn.Conv3d(cout + cskip, cout, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x, skip):
        x = torch.cat([self.up(x), skip], dim=1)
        return F.relu(self.bn(self.conv(x)))


class Decoder(nn.Module):
    def __init__(self, c4, skips, widths, classes):
        super().__init__()
        blocks, cin = [], c4
        for d, s in zip(widths, skips):
            blocks.append(DecoderBlock(cin, d, s))
            cin = d
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv3d(cin, classes, kernel_size=1)

    def forward(self, pyramid):
        # pyramid: input, stem, layer1, layer2, layer3, layer4
        x = pyramid[5]
        for i, blk in enumerate(self.blocks):
            x = blk(x, pyramid[4 - i])
        return self.head(x)


def class_histograms(x, prob, edges, hu_min, hu_max):
    """[B, C * bins] log(1 + sum of prob[:, c] over the voxels whose HU lies in each bin): the
    intensities inside each class the decoder segments ("class_histogram_hu" in
    core/model/modelconfig.h). x: [B, 1, Z, Y, X] min-max normalised input; prob: [B, C, Z, Y, X]
    class probabilities; edges: the HU bin edges (the outer bins open-ended)."""
    e = torch.as_tensor(edges, dtype=torch.float32, device=x.device)
    bins = e.numel() - 1
    hu = (x.float() * (hu_max - hu_min) + hu_min).clamp(hu_min, hu_max).flatten(1)     # [B, V]
    b = (torch.bucketize(hu, e, right=True) - 1).clamp(0, bins - 1)                     # [B, V]
    p = prob.flatten(2).to(torch.float64 if prob.dtype == torch.float64 else torch.float32)
    h = torch.zeros(p.shape[0], p.shape[1], bins, dtype=p.dtype, device=p.device)
    h.scatter_add_(2, b.unsqueeze(1).expand(-1, p.shape[1], -1), p)
    return h.flatten(1).log1p()


def erode_classes(prob, r):
    """The minimum of each class's probability over the (2r+1)^3 cube around each voxel, inside the
    grid ("class_histogram_erosion": the classes' interiors), as -max_pool3d(-prob, 2r + 1, stride 1,
    padding r) gives it. Computed one axis at a time (exact for a minimum) as the minimum of 2r + 1
    shifted views: on the CPU ~30x faster than max_pool3d, which is slow there."""
    q = prob
    for dim in (4, 3, 2):
        n = q.shape[dim]
        pad = list(q.shape)
        pad[dim] = r
        inf = q.new_full(pad, float("inf"))
        padded = torch.cat([inf, q, inf], dim=dim)
        out = padded.narrow(dim, 0, n)
        for s in range(1, 2 * r + 1):
            out = torch.minimum(out, padded.narrow(dim, s, n))
        q = out
    return q


def histogram_config(cfg):
    """(edges, hu_min, hu_max, erosion) of the config's class histograms (erosion 0: none), or None."""
    edges = cfg["projection"].get("class_histogram_hu")
    if not edges:
        return None
    pp = cfg["preprocess"]
    return ([float(v) for v in edges], float(pp["hu_min"]), float(pp["hu_max"]),
            int(cfg["projection"].get("class_histogram_erosion", 0)))


def histogram_inputs(hist, classes):
    """How many class-histogram inputs the vision projection reads after the pooled feature."""
    return (len(hist[0]) - 1) * classes * (2 if hist[3] else 1) if hist else 0


def projection_histograms(x, prob, hist):
    """What the vision projection reads after the pooled feature: the class histograms of prob and,
    with erosion, those of the eroded prob after them (hist: histogram_config)."""
    edges, lo, hi, r = hist
    h = class_histograms(x, prob, edges, lo, hi)
    return torch.cat([h, class_histograms(x, erode_classes(prob, r), edges, lo, hi)], dim=1) if r else h


def projection(cin, hidden, dim):
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class T3DVision(nn.Module):
    def __init__(self, cfg, bias_downsample=False):
        super().__init__()
        vc = cfg["vision"]
        exp = 4 if vc["block"] == "bottleneck" else 1
        stage = [w * exp for w in vc["widths"]]
        self.vision = monai_resnet(vc, bias_downsample)
        self.hist = histogram_config(cfg)
        extra = histogram_inputs(self.hist, cfg["segmentation"]["classes"]) if self.hist else 0
        self.vision_proj = projection(stage[3] + extra, cfg["projection"]["hidden"], cfg["projection"]["dim"])
        self.seg = None
        if "segmentation" in cfg:
            sc = cfg["segmentation"]
            skips = [stage[2], stage[1], stage[0], vc["widths"][0], vc["in_channels"]]
            self.seg = Decoder(stage[3], skips, sc["decoder_widths"], sc["classes"])
        self.logit_scale = nn.Parameter(torch.tensor([cfg.get("logit_scale_init", 2.6592600)]))

    def pyramid(self, x):
        r = self.vision
        stem = r.act(r.bn1(r.conv1(x)))
        y = stem if r.no_max_pool else r.maxpool(stem)
        l1 = r.layer1(y)
        l2 = r.layer2(l1)
        l3 = r.layer3(l2)
        l4 = r.layer4(l3)
        return [x, stem, l1, l2, l3, l4]

    def forward(self, x, segment=True):
        p = self.pyramid(x)
        pooled = p[5].mean(dim=(2, 3, 4))
        logits = self.seg(p) if ((segment or self.hist) and self.seg is not None) else None
        feat = pooled
        if self.hist:
            feat = torch.cat([pooled, projection_histograms(x, logits.softmax(dim=1), self.hist).to(pooled.dtype)], dim=1)
        emb = F.normalize(self.vision_proj(feat), dim=-1)
        return pooled, emb, logits if segment else None


def randomize(model, seed):
    """Random weights everywhere, BatchNorm affine and running statistics included."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
                fan = m.weight[0].numel() if isinstance(m, nn.Conv3d) else m.weight.shape[0] * 8
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm3d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            elif isinstance(m, nn.Linear):
                b = 1.0 / m.in_features ** 0.5
                m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * b)
                m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * b)


def model_tensors(model):
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        out[k] = v.detach().float().cpu().numpy()
    return out


def cmd_write(a):
    full = json.load(open(a.config))
    cfg = full["model"]
    torch.manual_seed(a.seed)
    model = T3DVision(cfg, bias_downsample=a.bias_downsample).eval()
    randomize(model, a.seed)
    shape = [int(v) for v in a.shape.split(",")]
    g = torch.Generator().manual_seed(a.seed + 1)
    x = torch.rand(shape, generator=g)
    st.write(a.model, model_tensors(model),
                      {"t3d.format_version": "1", "t3d.config": json.dumps(full)})
    with torch.no_grad():
        # Sanity: our pyramid walk reproduces MONAI's own forward (avgpool + flatten).
        ref_pool = model.vision(x)
        md = model.double()
        pooled, emb, logits = md(x.double())
        if (ref_pool.double() - pooled).abs().max() > 1e-3 * max(1.0, pooled.abs().max().item()):
            sys.exit("t3d_reference: pyramid walk disagrees with monai ResNet.forward")
        # torch fp32 against the float64 reference, for context
        m32 = model.float()
        p32, e32, l32 = m32(x)
    io = {"input": x.numpy(), "pooled": pooled.float().numpy(), "embedding": emb.float().numpy()}
    if logits is not None:
        io["logits"] = logits.float().numpy()
    st.write(a.io, io, {"t3d.format_version": "1"})

    def rel(a32, r):
        return ((a32.double() - r).abs().max() / r.abs().max()).item()

    msg = "torch fp32 vs float64: pooled %.2e embedding %.2e" % (rel(p32, pooled), rel(e32, emb))
    if logits is not None:
        msg += " logits %.2e" % rel(l32, logits)
    print(msg)


def cmd_bench(a):
    torch.set_num_threads(a.threads)
    cfg = json.load(open(a.config))["model"]
    model = T3DVision(cfg).eval()
    shape = [int(v) for v in a.shape.split(",")]
    x = torch.rand(shape)
    times, cpu = [], []
    with torch.no_grad():
        while more_runs(times, a):
            c0 = time.process_time()
            t0 = time.perf_counter()
            if a.segment:
                p = model.pyramid(x)
                model.seg(p)
                del p
            else:
                model.vision(x)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    best = times.index(min(times))
    print(json.dumps({"ms": times[best], "cpu_ms": cpu[best], "ms_all": times, "vmhwm_kib": vmhwm_kib(),
                      "threads": a.threads}))


def cmd_bench_text(a):
    from transformers import BertConfig, BertModel
    torch.set_num_threads(a.threads)
    cfg = json.load(open(a.config))["model"]
    t = cfg["text"]
    bert = BertModel(BertConfig(vocab_size=t["vocab_size"], hidden_size=t["hidden"], num_hidden_layers=t["layers"],
                                num_attention_heads=t["heads"], intermediate_size=t["intermediate"],
                                max_position_embeddings=t["max_positions"], type_vocab_size=t["type_vocab_size"],
                                layer_norm_eps=t["layer_norm_eps"]), add_pooling_layer=False).eval()
    proj = projection(t["hidden"], cfg["projection"]["hidden"], cfg["projection"]["dim"]).eval()
    ids = torch.randint(5, t["vocab_size"], (1, min(a.tokens, t["max_positions"])))
    mask = torch.ones_like(ids)
    times, cpu = [], []
    with torch.no_grad():
        i = 0
        while i == 0 or more_runs(times, a):  # the first run warms up, as on the t3d side
            c0 = time.process_time()
            t0 = time.perf_counter()
            h = bert(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
            F.normalize(proj(h), dim=-1)
            if i:
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            i += 1
    best = times.index(min(times))
    print(json.dumps({"ms": times[best], "cpu_ms": cpu[best], "vmhwm_kib": vmhwm_kib(), "threads": a.threads}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="random weights -> model file + reference outputs")
    w.add_argument("--config", required=True, help="config JSON file ({\"model\": ...})")
    w.add_argument("--shape", required=True, help="input N,C,D,H,W")
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--bias-downsample", type=int, default=0)
    w.add_argument("--model", required=True)
    w.add_argument("--io", required=True)
    b = sub.add_parser("bench", help="time the PyTorch forward; prints JSON")
    b.add_argument("--config", required=True)
    b.add_argument("--shape", required=True)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--segment", type=int, default=0)
    b.add_argument("--repeat", type=int, default=1)
    b.add_argument("--min-ms", type=float, default=0.0, help="more runs while the timed ones add up to less")
    b.add_argument("--max-runs", type=int, default=20, help="the most timed runs --min-ms adds up to")
    t = sub.add_parser("bench-text", help="time BertModel + projection on one sequence; prints JSON")
    t.add_argument("--config", required=True)
    t.add_argument("--tokens", type=int, default=256)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--repeat", type=int, default=1)
    t.add_argument("--min-ms", type=float, default=0.0, help="more runs while the timed ones add up to less")
    t.add_argument("--max-runs", type=int, default=20, help="the most timed runs --min-ms adds up to")
    a = ap.parse_args()
    {"write": cmd_write, "bench": cmd_bench, "bench-text": cmd_bench_text}[a.cmd](a)


if __name__ == "__main__":
    main()
