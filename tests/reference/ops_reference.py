#!/usr/bin/env python3
"""PyTorch references for every op of kernels/backend.h, for tests/test-ops-parity.

Draws fresh random inputs and weights on every run (seed from os.urandom unless T3D_SEED is
set; the seed is printed so that a failure can be reproduced), computes the outputs with PyTorch
1.13 CPU ops and writes them all into one safetensors file. It does not compare anything: the C
program does, so the same file can check any backend.

Inputs are fp32. The reference output is PyTorch's op applied to those inputs promoted to float64,
rounded to fp32: the tolerance then measures the backend's error alone, not that plus PyTorch's
own fp32 rounding (which is not always small: LayerNorm over one feature is off by ~2e-5 in
PyTorch fp32). PyTorch's fp32 result is still computed and its deviation from the reference is
stored per case (torch_f32_rel, same measure as test-ops-parity's rel) so the two can be compared.

File layout (safetensors, written here without the safetensors package):
  8-byte little-endian header length, JSON header, raw little-endian tensor bytes.
  Header: {"<name>": {"dtype": "F32"|"I32", "shape": [...], "data_offsets": [begin, end]}, ...,
           "__metadata__": {"t3d.format_version": "1", "t3d.parity.seed": "<seed>",
                            "t3d.parity.torch": "<torch version>", "t3d.parity.reference": "<how>",
                            "t3d.parity.cases": "<JSON>"}}
  t3d.parity.cases is a JSON list, one object per case:
    {"name": "conv3d/k3s2p1/relu", "op": "conv3d", "params": {...},
     "inputs": {"x": "<tensor name>", "w": ..., "bias": null, ...}, "expected": "<tensor name>",
     "torch_f32_rel": <PyTorch fp32's rel error against expected; for argmax, differing indices;
                       null when PyTorch fp32 puts NaN/inf elsewhere than the reference>}
  Input roles per op (null = absent):
    conv3d x w bias residual      params stride pad relu
    conv3d_transpose x w bias     params stride pad output_pad
    relu x | gelu x | softmax x | avgpool3d_global x | avgpool3d_adaptive x | argmax x
    resample_trilinear x          (output size = shape of expected)
    add a b | concat a b
    maxpool3d x                   params kernel stride pad
    linear x w b
    layernorm x gamma beta        params eps
    attention q k v key_mask      params heads
    embedding ids table
    batchnorm_fold x w bias gamma beta mean var   params stride pad eps
      (expected = BatchNorm3d(eval)(conv3d(x, w, bias)); the C side folds then convolves)

Usage: ops_reference.py OUT.safetensors
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import t3d_safetensors as st  # noqa: E402


class Builder:
    """Collects tensors and case descriptions, then writes the safetensors file."""

    def __init__(self, gen):
        self.gen = gen
        self.tensors = {}
        self.cases = []

    def randn(self, *shape, scale=1.0, offset=0.0):
        return torch.randn(*shape, generator=self.gen, dtype=torch.float32) * scale + offset

    def uniform(self, *shape, lo=0.0, hi=1.0):
        return torch.rand(*shape, generator=self.gen, dtype=torch.float32) * (hi - lo) + lo

    def randint(self, lo, hi, *shape):
        return torch.randint(lo, hi, shape, generator=self.gen, dtype=torch.int64)

    def add(self, name, op, params, inputs, fn):
        """fn(inputs) -> output, written with torch ops. The reference is fn on the fp32 inputs
        promoted to float64, rounded to fp32; fn on the fp32 inputs (PyTorch's own fp32 result)
        is kept only to report its deviation from that reference (torch_f32_rel)."""
        idx = len(self.cases)
        names = {}
        for role, t in inputs.items():
            if t is None:
                names[role] = None
                continue
            tname = "c%d.%s" % (idx, role)
            self.tensors[tname] = t
            names[role] = tname
        promote = lambda t: t.double() if t is not None and t.is_floating_point() else t
        ref = fn({r: promote(t) for r, t in inputs.items()})
        f32 = fn(inputs)
        if ref.is_floating_point():
            expected = ref.float()
            e, f = expected.double(), f32.double()
            finite = torch.isfinite(e)
            same = torch.where(finite, torch.isfinite(f), (torch.isnan(e) & torch.isnan(f)) | (e == f))
            if not bool(same.all()):
                torch_rel = None  # PyTorch fp32 has NaN/inf where the reference has not, or vice versa
            elif bool(finite.any()):
                err = (f[finite] - e[finite]).abs().max().item()
                torch_rel = err / max(e[finite].abs().max().item(), 1e-30)
            else:
                torch_rel = 0.0
        else:
            expected = ref
            torch_rel = float((f32 != ref).sum().item())
        ename = "c%d.expected" % idx
        self.tensors[ename] = expected
        self.cases.append({"name": name, "op": op, "params": params, "inputs": names, "expected": ename,
                           "torch_f32_rel": torch_rel})

    def write(self, path, seed):
        arrays = {}
        for name, t in self.tensors.items():
            t = t.detach().contiguous()
            if t.dtype in (torch.int64, torch.int32, torch.bool):
                arrays[name] = t.to(torch.int32).numpy()
            else:
                arrays[name] = t.to(torch.float32).numpy()
        st.write(path, arrays, {
            "t3d.parity.seed": str(seed),
            "t3d.parity.torch": torch.__version__,
            "t3d.parity.reference": "PyTorch CPU on the fp32 inputs promoted to float64, rounded to fp32",
            "t3d.parity.cases": json.dumps(self.cases, separators=(",", ":"), allow_nan=False),
        })


def trip(v):
    return [v, v, v] if isinstance(v, int) else list(v)


def conv_cases(b):
    # (name, N, Cin, Cout, DHW, kernel, stride, pad, bias, residual, relu)
    specs = [
        ("k3s1p1/odd", 1, 3, 5, (7, 9, 11), 3, 1, 1, True, False, False),
        ("k3s2p1/batch2/relu", 2, 4, 6, (9, 8, 7), 3, 2, 1, True, False, True),
        ("k1s1p0/nobias", 1, 8, 16, (5, 6, 7), 1, 1, 0, False, False, False),
        ("k7s2p3/conv1", 1, 1, 8, (15, 17, 13), 7, 2, 3, True, False, False),
        ("k3s1p1/residual/relu", 2, 6, 6, (6, 7, 5), 3, 1, 1, True, True, True),
        ("k1s2p0/downsample", 1, 8, 12, (9, 9, 9), 1, 2, 0, False, False, False),
        ("k(3,1,5)s(1,2,2)p(1,0,2)/anisotropic", 1, 3, 4, (5, 8, 9), (3, 1, 5), (1, 2, 2), (1, 0, 2), True, False, False),
        ("k3s1p0/nopad/residual", 1, 5, 7, (6, 6, 6), 3, 1, 0, False, True, False),
        ("k3s1p1/wide/relu", 1, 32, 24, (6, 5, 7), 3, 1, 1, True, False, True),
        # sizes that cross the CPU conv's tiling: input channels split in chunks, several
        # output-position tiles with a remainder
        ("k3s1p1/cin96", 1, 96, 8, (5, 6, 7), 3, 1, 1, True, False, False),
        ("k3s1p1/tiled-positions", 1, 4, 6, (16, 17, 18), 3, 1, 1, True, True, True),
        # the AVX-512 conv's paths and blocks: rows of 32+ outputs (im2col strips), K over one
        # chunk (160 rows; 192 on the same-size path), direct 1x1 over several position tiles,
        # output channels beyond one 512-channel block and not a multiple of 8
        ("k3s2p1/wide-rows", 1, 5, 13, (3, 4, 70), 3, 2, 1, True, False, False),
        ("k3s1p0/wide-rows/k-chunks", 1, 12, 20, (3, 3, 40), 3, 1, 0, True, True, True),
        ("k3s1p1/same/k-chunks", 1, 20, 9, (4, 5, 36), 3, 1, 1, True, False, True),
        ("k1s1p0/direct/positions", 2, 40, 37, (3, 4, 50), 1, 1, 0, True, False, False),
        ("k1s1p0/cout520", 1, 2, 520, (2, 2, 3), 1, 1, 0, True, False, False),
        # inputs smaller than the kernel: most taps fall in the padding
        ("k3s1p1/tiny-1x2x3", 1, 2, 4, (1, 2, 3), 3, 1, 1, True, False, False),
        ("k3s2p1/tiny-1x2x3", 2, 3, 2, (1, 2, 3), 3, 2, 1, False, False, True),
    ]
    for name, n, ci, co, dhw, k, s, p, has_bias, has_res, relu in specs:
        k, s, p = trip(k), trip(s), trip(p)
        x = b.randn(n, ci, *dhw)
        fan_in = ci * k[0] * k[1] * k[2]
        w = b.randn(co, ci, *k, scale=1.0 / math.sqrt(fan_in))
        bias = b.randn(co, scale=0.5) if has_bias else None
        yshape = F.conv3d(x, w, None, stride=s, padding=p).shape
        res = b.randn(*yshape) if has_res else None

        def fn(t, s=s, p=p, relu=relu):
            y = F.conv3d(t["x"], t["w"], t["bias"], stride=s, padding=p)
            if t["residual"] is not None:
                y = y + t["residual"]
            return F.relu(y) if relu else y

        b.add("conv3d/" + name, "conv3d", {"stride": s, "pad": p, "relu": relu},
              {"x": x, "w": w, "bias": bias, "residual": res}, fn)


def conv_transpose_cases(b):
    # (name, N, Cin, Cout, DHW, kernel, stride, pad, output_pad, bias)
    specs = [
        ("k2s2p0", 1, 8, 4, (5, 6, 7), 2, 2, 0, 0, True),
        ("k3s2p1op1/batch2", 2, 6, 3, (4, 5, 3), 3, 2, 1, 1, True),
        ("k3s1p1/nobias", 1, 4, 5, (5, 5, 6), 3, 1, 1, 0, False),
        ("k2s2p0/batch2", 2, 16, 8, (3, 4, 5), 2, 2, 0, 0, True),
        ("k3s2p0", 1, 3, 2, (3, 4, 5), 3, 2, 0, 0, False),
        ("k3s2p1op1/cin64", 1, 64, 16, (4, 5, 6), 3, 2, 1, 1, True),
        ("k2s2p0/1x1x1", 2, 5, 3, (1, 1, 1), 2, 2, 0, 0, True),
        ("k(2,3,1)s(2,2,1)p(0,1,0)op(1,1,0)/anisotropic", 1, 4, 3, (3, 5, 4), (2, 3, 1), (2, 2, 1), (0, 1, 0), (1, 1, 0), True),
    ]
    for name, n, ci, co, dhw, k, s, p, op, has_bias in specs:
        k, s, p, op = trip(k), trip(s), trip(p), trip(op)
        x = b.randn(n, ci, *dhw)
        w = b.randn(ci, co, *k, scale=1.0 / math.sqrt(ci * k[0] * k[1] * k[2]))
        bias = b.randn(co, scale=0.5) if has_bias else None
        b.add("conv3d_transpose/" + name, "conv3d_transpose", {"stride": s, "pad": p, "output_pad": op},
              {"x": x, "w": w, "bias": bias},
              lambda t, s=s, p=p, op=op: F.conv_transpose3d(t["x"], t["w"], t["bias"], stride=s, padding=p,
                                                            output_padding=op))


def dims(shape):
    return "x".join(map(str, shape))


def elementwise_cases(b):
    for shape in [(2, 3, 5, 7, 9), (1001,), (3, 17)]:
        x = b.randn(*shape)
        b.add("relu/" + dims(shape), "relu", {}, {"x": x}, lambda t: F.relu(t["x"]))
        b.add("add/" + dims(shape), "add", {}, {"a": x, "b": b.randn(*shape)}, lambda t: torch.add(t["a"], t["b"]))
    for shape, scale in [((4, 3072), 3.0), ((1001,), 5.0), ((2, 3, 7, 5), 1.0), ((3, 65), 40.0)]:
        b.add("gelu/" + dims(shape), "gelu", {}, {"x": b.randn(*shape, scale=scale)}, lambda t: F.gelu(t["x"]))
    # softmax: ordinary, large magnitudes (overflow without max subtraction), a long row
    for name, x in [("12x17x17", b.randn(12, 17, 17)),
                    ("large/3x5x257", b.randn(3, 5, 257, scale=100.0, offset=1000.0)),
                    ("large-negative/4x9", b.randn(4, 9, scale=3000.0, offset=-5e4)),
                    ("1x1", b.randn(1, 1)),
                    ("2x1000", b.randn(2, 1000, scale=10.0)),
                    ("1d/777", b.randn(777, scale=3.0))]:
        b.add("softmax/" + name, "softmax", {}, {"x": x}, lambda t: F.softmax(t["x"], dim=-1))
    # -inf entries (a masked score) give exactly 0; no row is all -inf
    x = b.randn(5, 33, scale=4.0)
    x[torch.rand(5, 33, generator=b.gen) < 0.3] = float("-inf")
    x[:, 0] = 1.0
    b.add("softmax/with-inf/5x33", "softmax", {}, {"x": x}, lambda t: F.softmax(t["x"], dim=-1))
    # rows of all -inf or holding a NaN give NaN rows (backend.h, as torch.softmax)
    x = b.randn(4, 7)
    x[1, :] = float("-inf")
    x[3, 2] = float("nan")
    b.add("softmax/nan-rows/4x7", "softmax", {}, {"x": x}, lambda t: F.softmax(t["x"], dim=-1))
    # layernorm: eps values of BERT (1e-12) and PyTorch's default (1e-5); an offset mean; E = 1
    # (zero variance: the output is beta, which PyTorch's own fp32 kernel misses by ~2e-5)
    for name, shape, eps, offset in [("3x7x33/eps1e-5", (3, 7, 33), 1e-5, 0.0),
                                     ("5x768/eps1e-12", (5, 768), 1e-12, 0.0),
                                     ("4x65/eps1e-3/offset30", (4, 65), 1e-3, 30.0),
                                     ("2x2x1/eps1e-5", (2, 2, 1), 1e-5, 0.0),
                                     ("1d/768/eps1e-12", (768,), 1e-12, 0.0),
                                     ("no-affine/3x40/eps1e-5", (3, 40), 1e-5, 0.0)]:
        e = shape[-1]
        affine = not name.startswith("no-affine")  # gamma, beta NULL mean 1 and 0
        b.add("layernorm/" + name, "layernorm", {"eps": eps},
              {"x": b.randn(*shape, offset=offset), "gamma": b.randn(e, scale=0.5, offset=1.0) if affine else None,
               "beta": b.randn(e, scale=0.5) if affine else None},
              lambda t, e=e, eps=eps: F.layer_norm(t["x"], (e,), t["gamma"], t["beta"], eps))


def pool_cases(b):
    for name, shape, k, s, p, offset in [
            ("k3s2p1/odd", (1, 4, 9, 10, 11), 3, 2, 1, 0.0),
            ("k3s2p1/all-negative", (2, 3, 7, 6, 5), 3, 2, 1, -10.0),
            ("k2s2p0/batch2", (2, 3, 8, 8, 8), 2, 2, 0, 0.0),
            ("k2s2p0/odd-floor", (1, 2, 7, 9, 5), 2, 2, 0, 0.0),
            ("k3s2p1/narrower-than-kernel", (1, 2, 2, 3, 1), 3, 2, 1, -5.0),
            ("k3s1p1", (1, 2, 5, 6, 7), 3, 1, 1, 0.0),
            ("k(1,3,3)s(1,2,2)p(0,1,1)", (1, 3, 4, 9, 8), (1, 3, 3), (1, 2, 2), (0, 1, 1), 0.0)]:
        k, s, p = trip(k), trip(s), trip(p)
        b.add("maxpool3d/" + name, "maxpool3d", {"kernel": k, "stride": s, "pad": p},
              {"x": b.randn(*shape, offset=offset)}, lambda t, k=k, s=s, p=p: F.max_pool3d(t["x"], k, s, p))
    for shape in [(2, 5, 3, 4, 5), (1, 64, 5, 7, 7), (3, 1, 1, 1, 1), (1, 3, 17, 19, 23)]:
        b.add("avgpool3d_global/" + dims(shape), "avgpool3d_global", {}, {"x": b.randn(*shape, offset=0.5)},
              lambda t: t["x"].mean((2, 3, 4)))
    for shape, out in [((1, 3, 7, 9, 11), (3, 4, 5)), ((2, 4, 10, 10, 10), (3, 3, 3)),
                       ((1, 2, 5, 6, 7), (1, 1, 1)), ((1, 2, 4, 5, 6), (5, 7, 8)),
                       ((1, 8, 5, 7, 7), (2, 2, 2))]:
        b.add("avgpool3d_adaptive/%s->%s" % (dims(shape), dims(out)), "avgpool3d_adaptive", {},
              {"x": b.randn(*shape)}, lambda t, out=out: F.adaptive_avg_pool3d(t["x"], out))


def linear_cases(b):
    for name, xs, out, has_bias in [("2x7x13->11", (2, 7, 13), 11, True),
                                    ("5x768->64/nobias", (5, 768), 64, False),
                                    ("3x1x33->1", (3, 1, 33), 1, True),
                                    ("17x65->129", (17, 65), 129, True),
                                    ("1x1->3", (1, 1), 3, True),
                                    ("2x2x3x40->24", (2, 2, 3, 40), 24, True),
                                    ("64x3072->768", (64, 3072), 768, True),
                                    ("13->11/1d", (13,), 11, True)]:
        b.add("linear/" + name, "linear", {},
              {"x": b.randn(*xs), "w": b.randn(out, xs[-1], scale=1.0 / math.sqrt(xs[-1])),
               "b": b.randn(out) if has_bias else None},
              lambda t: F.linear(t["x"], t["w"], t["b"]))


def attention_ref(q, k, v, key_mask, heads):
    """softmax(q k^T / sqrt(Dh), masked keys -inf) v, per head; q[B,Lq,H*Dh], k,v[B,Lk,H*Dh]."""
    bsz, lq, e = q.shape
    lk = k.shape[1]
    dh = e // heads
    qh = q.view(bsz, lq, heads, dh).transpose(1, 2)  # [B,H,Lq,Dh]
    kh = k.view(bsz, lk, heads, dh).transpose(1, 2)
    vh = v.view(bsz, lk, heads, dh).transpose(1, 2)
    scores = torch.matmul(qh, kh.transpose(-1, -2)) / math.sqrt(dh)  # [B,H,Lq,Lk]
    if key_mask is not None:
        scores = scores.masked_fill((key_mask == 0)[:, None, None, :], float("-inf"))
    out = torch.matmul(torch.softmax(scores, dim=-1), vh)  # [B,H,Lq,Dh]
    return out.transpose(1, 2).reshape(bsz, lq, e)


def attention_fn(heads):
    """attention_ref, except that a batch entry whose keys are all masked gives 0 (backend.h's
    definition; torch gives NaN there)."""
    def fn(t):
        y = attention_ref(t["q"], t["k"], t["v"], t["key_mask"], heads)
        if t["key_mask"] is not None:
            y[(t["key_mask"] != 0).sum(1) == 0] = 0.0
        return y
    return fn


def check_attention_against_torch_mha(b):
    """The formula above must equal PyTorch's own multi-head attention with identity projections."""
    bsz, l, heads, dh = 2, 9, 4, 8
    e = heads * dh
    q, k, v = b.randn(bsz, l, e), b.randn(bsz, l, e), b.randn(bsz, l, e)
    mask = torch.ones(bsz, l, dtype=torch.int64)
    mask[1, 6:] = 0
    eye = torch.eye(e, dtype=torch.float64)
    out, _ = F.multi_head_attention_forward(
        q.double().transpose(0, 1), k.double().transpose(0, 1), v.double().transpose(0, 1), e, heads,
        in_proj_weight=torch.cat([eye, eye, eye]), in_proj_bias=torch.zeros(3 * e, dtype=torch.float64),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=eye, out_proj_bias=torch.zeros(e, dtype=torch.float64), training=False,
        key_padding_mask=(mask == 0), need_weights=False)
    mine = attention_ref(q.double(), k.double(), v.double(), mask, heads)
    err = (out.transpose(0, 1) - mine).abs().max().item()
    if not err <= 1e-12:
        raise SystemExit("ops_reference.py: attention reference differs from F.multi_head_attention_forward "
                         "by %g (> 1e-12): the reference formula is wrong" % err)
    b.add("attention/B2L9H4Dh8/mask/equals-torch-mha", "attention", {"heads": heads},
          {"q": q, "k": k, "v": v, "key_mask": mask}, attention_fn(heads))


def attention_cases(b):
    check_attention_against_torch_mha(b)
    # (name, B, Lq, Lk, H, Dh, valid key lengths per batch or None for no mask)
    for name, bsz, lq, lk, heads, dh, valid in [
            ("B2L7H1Dh8/mask", 2, 7, 7, 1, 8, [7, 4]),
            ("B2Lq5Lk9H4Dh16/mask/cross", 2, 5, 9, 4, 16, [9, 6]),
            ("B1L33H12Dh8/nomask", 1, 33, 33, 12, 8, None),
            ("B3L20H12Dh4/mask", 3, 20, 20, 12, 4, [20, 1, 13]),
            ("B1L256H12Dh64/mask", 1, 256, 256, 12, 64, [200]),
            ("B1L1H1Dh3/nomask", 1, 1, 1, 1, 3, None),
            ("B3L6H2Dh4/fully-masked-entry", 3, 6, 6, 2, 4, [6, 0, 2])]:
        e = heads * dh
        mask = None
        if valid is not None:
            mask = torch.zeros(bsz, lk, dtype=torch.int64)
            for i, n in enumerate(valid):
                mask[i, :n] = 1
        b.add("attention/" + name, "attention", {"heads": heads},
              {"q": b.randn(bsz, lq, e), "k": b.randn(bsz, lk, e), "v": b.randn(bsz, lk, e), "key_mask": mask},
              attention_fn(heads))


def misc_cases(b):
    for name, vocab, e, ids_shape in [("50x16/ids2x7", 50, 16, (2, 7)), ("1000x64/ids3x11", 1000, 64, (3, 11)),
                                      ("7x5/ids1", 7, 5, (1,))]:
        ids = b.randint(0, vocab, *ids_shape)
        ids.view(-1)[0] = vocab - 1  # the last row is a classic off-by-one
        b.add("embedding/" + name, "embedding", {}, {"ids": ids, "table": b.randn(vocab, e)},
              lambda t: F.embedding(t["ids"], t["table"]))
    for name, sa, sb in [("2x3+5x4x5x6", (2, 3, 4, 5, 6), (2, 5, 4, 5, 6)),
                         ("1x1+7x3x3x3", (1, 1, 3, 3, 3), (1, 7, 3, 3, 3)),
                         ("3x4+2", (3, 4), (3, 2)),
                         ("2x3+1x5", (2, 3, 5), (2, 1, 5))]:
        b.add("concat/" + name, "concat", {}, {"a": b.randn(*sa), "b": b.randn(*sb)},
              lambda t: torch.cat([t["a"], t["b"]], dim=1))
    for shape, out in [((1, 2, 5, 6, 7), (8, 9, 13)), ((2, 3, 16, 15, 14), (7, 6, 5)),
                       ((1, 1, 10, 10, 10), (20, 20, 20)), ((1, 2, 6, 9, 4), (11, 5, 4)),
                       ((1, 1, 3, 4, 5), (1, 1, 1)), ((1, 1, 1, 1, 1), (3, 2, 4))]:
        b.add("resample_trilinear/%s->%s" % (dims(shape), dims(out)), "resample_trilinear", {},
              {"x": b.randn(*shape)},
              lambda t, out=out: F.interpolate(t["x"], size=out, mode="trilinear", align_corners=False))
    argmax = lambda t: t["x"].argmax(1)
    for c in range(2, 10):
        b.add("argmax/C%d/2x%dx5x6x7" % (c, c), "argmax", {}, {"x": b.randn(2, c, 5, 6, 7)}, argmax)
    # ties: small integers make equal maxima common; PyTorch returns the first
    b.add("argmax/ties/1x4x6x7x8", "argmax", {}, {"x": torch.round(b.randn(1, 4, 6, 7, 8, scale=0.7))}, argmax)
    b.add("argmax/2d/4x9", "argmax", {}, {"x": b.randn(4, 9)}, argmax)
    # NaN counts as the largest, the first NaN wins (backend.h, as torch.argmax)
    x = b.randn(2, 5, 3, 4, 6)
    x[torch.rand(x.shape, generator=b.gen) < 0.1] = float("nan")
    b.add("argmax/nan/2x5x3x4x6", "argmax", {}, {"x": x}, argmax)


def batchnorm_fold_cases(b):
    for name, n, ci, co, dhw, k, s, p, has_bias, eps in [("k3s1p1/bias", 1, 3, 6, (5, 6, 7), 3, 1, 1, True, 1e-5),
                                                         ("k1s2p0/nobias", 2, 4, 5, (7, 5, 6), 1, 2, 0, False, 1e-3)]:
        k, s, p = trip(k), trip(s), trip(p)
        inputs = {"x": b.randn(n, ci, *dhw),
                  "w": b.randn(co, ci, *k, scale=1.0 / math.sqrt(ci * k[0] * k[1] * k[2])),
                  "bias": b.randn(co, scale=0.5) if has_bias else None,
                  "gamma": b.randn(co, scale=0.5, offset=1.0), "beta": b.randn(co, scale=0.5),
                  "mean": b.randn(co, scale=0.5), "var": b.uniform(co, lo=0.2, hi=2.0)}

        def fn(t, co=co, s=s, p=p, eps=eps):
            bn = torch.nn.BatchNorm3d(co, eps=eps).to(t["x"].dtype)
            bn.weight.copy_(t["gamma"])
            bn.bias.copy_(t["beta"])
            bn.running_mean.copy_(t["mean"])
            bn.running_var.copy_(t["var"])
            bn.eval()
            return bn(F.conv3d(t["x"], t["w"], t["bias"], stride=s, padding=p))

        b.add("batchnorm_fold/" + name, "batchnorm_fold", {"stride": s, "pad": p, "eps": eps}, inputs, fn)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: ops_reference.py OUT.safetensors\n")
        return 2
    env_seed = os.environ.get("T3D_SEED")
    seed = int(env_seed) if env_seed else int.from_bytes(os.urandom(4), "little")
    print("ops_reference.py: seed %d (rerun with T3D_SEED=%d to reproduce)" % (seed, seed))
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(seed)
    b = Builder(gen)
    with torch.no_grad():
        conv_cases(b)
        conv_transpose_cases(b)
        elementwise_cases(b)
        pool_cases(b)
        linear_cases(b)
        attention_cases(b)
        misc_cases(b)
        batchnorm_fold_cases(b)
    b.write(sys.argv[1], seed)
    print("ops_reference.py: %d cases, %d tensors -> %s" % (len(b.cases), len(b.tensors), sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
