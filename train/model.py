"""The trainable T3D model: MONAI ResNet + decoder + vision projection (reused from
tests/reference/t3d_reference.py, whose layout the vision parity test proves equal to the C
engine's), Hugging Face BertModel + text projection, and the training-only TMA head (cross-
attention from dense layer-4 features to report tokens, projection, K prototypes).
Not the losses (train/losses.py) and not the export (train/export.py)."""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from t3d_reference import T3DVision, histogram_inputs, projection, projection_histograms  # noqa: E402

from train.losses import global_sum, world_size  # noqa: E402


# Weight init of the BERT tower trained from scratch. HF's 0.02 leaves a 2-layer tower's [CLS]
# state nearly the same for every report (attention uniform, tiny value paths: measured cosine
# 0.99996 between reports), and CLIP then sits at ln(batch) for many steps; 0.1 makes [CLS]
# depend on the text from the start (cosine ~0.95).
TEXT_INIT_STD = 0.1


def bert_config(tc, init_std=TEXT_INIT_STD):
    from transformers import BertConfig
    return BertConfig(vocab_size=tc["vocab_size"], hidden_size=tc["hidden"], num_hidden_layers=tc["layers"],
                      num_attention_heads=tc["heads"], intermediate_size=tc["intermediate"],
                      max_position_embeddings=tc["max_positions"], type_vocab_size=tc["type_vocab_size"],
                      layer_norm_eps=tc["layer_norm_eps"], hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, initializer_range=init_std)


def phase_conv3d(x, weight, bias, pad):
    """F.conv3d(x, weight, bias, stride=2, padding=pad) computed as a stride-1 convolution of
    the input's 8 even/odd phases (space-to-depth of the zero-padded input) with the kernel
    zero-padded to an even size and split the same way: the same sums in another order. For the
    stem (one input channel, 7x7x7, stride 2) PyTorch 1.13's CPU backward is ~2.7x faster this
    way (its weight gradient over one input channel was a fifth of a training step)."""
    B, C, Z, Y, X = x.shape
    O, k = weight.shape[0], weight.shape[2]
    kh = (k + 1) // 2
    outs = [(n + 2 * pad - k) // 2 + 1 for n in (Z, Y, X)]
    right = [2 * (o - 1) + 2 * kh - n - pad for o, n in zip(outs, (Z, Y, X))]  # >= pad >= 0
    xp = F.pad(x, (pad, right[2], pad, right[1], pad, right[0]))
    Zh, Yh, Xh = (s // 2 for s in xp.shape[2:])
    xs = xp.reshape(B, C, Zh, 2, Yh, 2, Xh, 2).permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(B, C * 8, Zh, Yh, Xh)
    e = 2 * kh - k
    wp = F.pad(weight, (0, e, 0, e, 0, e))
    ws = wp.reshape(O, C, kh, 2, kh, 2, kh, 2).permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(O, C * 8, kh, kh, kh)
    return F.conv3d(xs, ws, bias)


class PhaseConv3d(nn.Conv3d):
    """nn.Conv3d (same parameters, state dict and result) whose forward is phase_conv3d."""

    def _conv_forward(self, x, weight, bias):
        return phase_conv3d(x, weight, bias, self.padding[0])


class PointwiseConv3d(nn.Conv3d):
    """nn.Conv3d with a 1x1x1 kernel (same parameters and state dict) as a channel contraction:
    PyTorch 1.13's CPU backward of the decoder's 1x1x1 head at full resolution took as long as a
    3x3x3 convolution; this one is ~10 % of a decoder training step faster."""

    def _conv_forward(self, x, weight, bias):
        y = torch.einsum("bczyx,kc->bkzyx", x, weight.flatten(1))
        return y if bias is None else y + bias.view(1, -1, 1, 1, 1)


def use_pointwise_conv(conv):
    """Turns an unstrided, unpadded 1x1x1 nn.Conv3d into a PointwiseConv3d in place."""
    if (type(conv) is nn.Conv3d and conv.kernel_size == (1, 1, 1) and conv.stride == (1, 1, 1)
            and conv.padding == (0, 0, 0) and conv.dilation == (1, 1, 1) and conv.groups == 1):
        conv.__class__ = PointwiseConv3d
    return conv


def use_phase_conv(conv):
    """Turns a cubic, odd-sized, stride-2, 'same'-padded nn.Conv3d into a PhaseConv3d in place
    (training speed only: the exported weights do not change); other convolutions are left."""
    k = conv.kernel_size
    if (type(conv) is nn.Conv3d and conv.stride == (2, 2, 2) and k[0] % 2 == 1 and k == (k[0],) * 3
            and conv.padding == (k[0] // 2,) * 3 and conv.dilation == (1, 1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros"):
        conv.__class__ = PhaseConv3d
    return conv


class TMAHead(nn.Module):
    """Text-informed multi-view alignment head (training only, never exported): dense layer-4
    tokens of a view attend to the report's token features; the text-informed tokens are pooled,
    projected, L2-normalised and scored against K learnable prototypes."""

    def __init__(self, vis_ch, txt_ch, dim=64, prototypes=32, heads=4):
        super().__init__()
        self.q = nn.Linear(vis_ch, dim)
        self.kv = nn.Linear(txt_ch, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.prototypes = nn.Linear(dim, prototypes, bias=False)

    def forward(self, feat, tokens, token_mask):
        # feat [B, C, d, h, w] (layer 4 of one view); tokens [B, T, H]; token_mask [B, T] (1 = real)
        v = self.q(feat.flatten(2).transpose(1, 2))                  # [B, N, dim]
        t = self.kv(tokens)                                           # [B, T, dim]
        a, _ = self.attn(v, t, t, key_padding_mask=token_mask == 0)
        z = self.norm(v + a).mean(dim=1)
        z = F.normalize(self.proj(z), dim=-1)
        return self.prototypes(z)                                     # [B, K] cosine scores

    @torch.no_grad()
    def normalize_prototypes(self):
        """Unit-norm prototypes (called before each step, outside autograd, as SwAV does)."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))


class GlobalBatchNorm3d(nn.BatchNorm3d):
    """nn.BatchNorm3d (same parameters, buffers and state dict) whose training statistics cover the
    global batch of a distributed run: per-channel sum and sum of squares are all-reduced with
    gradients, so the forward and the gradients are those of one process on the whole batch. This
    is SyncBatchNorm for gloo on CPUs (torch 1.13's nn.SyncBatchNorm runs on GPUs only). Every
    process must make the same BatchNorm calls in the same order; `GlobalBatchNorm3d.enabled =
    False` turns the exchange off (e.g. rank 0 alone re-estimating statistics at the end)."""

    enabled = True

    def forward(self, x):
        world = world_size()
        if not (self.training and world > 1 and GlobalBatchNorm3d.enabled):
            return super().forward(x)
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        n = x.numel() // c * world  # the processes' batches are equal by construction (train.py)
        stats = global_sum(torch.cat([x.sum(dims), (x * x).sum(dims)]))
        mean = stats[:c] / n
        var = (stats[c:] / n - mean * mean).clamp_min(0)
        scale = torch.rsqrt(var + self.eps) * self.weight
        shift = self.bias - mean * scale
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                if f:
                    self.running_mean.lerp_(mean.detach(), f)
                    self.running_var.lerp_(var.detach() * (n / max(n - 1, 1)), f)
        shape = (1, c) + (1,) * (x.dim() - 2)
        return x * scale.view(shape) + shift.view(shape)


def use_global_bn(module):
    """Turns every nn.BatchNorm3d under module into a GlobalBatchNorm3d in place."""
    for m in module.modules():
        if type(m) is nn.BatchNorm3d:
            m.__class__ = GlobalBatchNorm3d
    return module


class Center(nn.Module):
    """Subtracts the batch mean of the projection outputs before the L2 normalisation (a running
    mean at evaluation), so that the component every embedding shares at initialisation does not
    pin all cosines near 1 and the contrastive gradients are not tiny. It has no weights: the export
    folds the running mean into the projection's last bias (exact for the C engine, which has no
    such layer). Per process in a distributed run, as BatchNorm, unless `sync` (the trainer's
    --sync-bn): then the mean of the global batch."""

    def __init__(self, dim, momentum=0.05, enabled=True):
        super().__init__()
        self.momentum, self.enabled = momentum, enabled
        self.sync = False
        self.register_buffer("running", torch.zeros(dim))

    def forward(self, x):
        if not self.enabled:
            return x
        if self.training and x.shape[0] > 1:
            if self.sync and GlobalBatchNorm3d.enabled:
                m = global_sum(x.sum(dim=0)) / (x.shape[0] * world_size())
            else:
                m = x.mean(dim=0)
            with torch.no_grad():
                self.running.lerp_(m.detach().float(), self.momentum)
            return x - m
        return x - self.running


def load_weights(model, state):
    """load_state_dict that accepts checkpoints written before the centring buffers or the class
    histograms' statistics existed (they start at zero, and one for the spread); any other missing
    or unexpected key is an error."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.endswith(("center.running", "hist_mu", "hist_sd"))] + list(unexpected)
    if bad:
        raise RuntimeError(f"checkpoint does not fit the model: {bad[:5]}")


class T3DModel(nn.Module):
    def __init__(self, cfg, tma_dim=64, prototypes=32, text_init_std=TEXT_INIT_STD, center=True):
        super().__init__()
        from transformers import BertModel
        self.cfg = cfg
        self.visual = T3DVision(cfg, bias_downsample=cfg["vision"].get("downsample_bias", True))
        use_phase_conv(self.visual.vision.conv1)
        if self.visual.seg is not None:
            use_pointwise_conv(self.visual.seg.head)
        tc = cfg["text"]
        self.text = BertModel(bert_config(tc, text_init_std), add_pooling_layer=False)
        self.text_proj = projection(tc["hidden"], cfg["projection"]["hidden"], cfg["projection"]["dim"])
        vc = cfg["vision"]
        c4 = vc["widths"][3] * (4 if vc["block"] == "bottleneck" else 1)
        self.tma = TMAHead(c4, tc["hidden"], tma_dim, prototypes)
        self.v_center = Center(cfg["projection"]["dim"], enabled=center)
        self.t_center = Center(cfg["projection"]["dim"], enabled=center)
        # The class histograms ("class_histogram_hu"): standardised by fixed statistics before the
        # projection (set_hist_norm), which the export folds into vision_proj.0, so that the C engine
        # reads the raw log counts. Computed from the decoder's probabilities without a gradient:
        # the decoder learns from the segmentation loss alone.
        self.hist = self.visual.hist
        nh = histogram_inputs(self.hist, cfg["segmentation"]["classes"])
        # a model file may hold fewer inputs: none of the histograms, or no eroded ones
        self.narrower_inputs = (c4, c4 + nh // 2) if self.hist and self.hist[3] else (c4,)
        self.c4 = c4
        self.register_buffer("hist_mu", torch.zeros(nh))
        self.register_buffer("hist_sd", torch.ones(nh))

    @property
    def logit_scale(self):
        return self.visual.logit_scale

    def encode_text(self, ids, mask):
        h = self.text(input_ids=ids, attention_mask=mask).last_hidden_state
        return F.normalize(self.t_center(self.text_proj(h[:, 0])), dim=-1), h

    def encode_volume(self, x, segment=True):
        """Returns (embedding [B, D], layer-4 features, seg logits or None). segment: True (all
        samples), False, or a count n: the decoder runs on the first n samples only (one encoder
        pass serves the contrastive batch and the segmentation subset)."""
        feat, f4, logits = self.projection_inputs(x, segment)
        return self.embed_features(feat), f4, logits

    def projection_inputs(self, x, segment=False):
        """(what the vision projection reads [B, C4 (+ classes x bins)], layer-4 features, seg
        logits or None as encode_volume): the pooled layer-4 feature, followed with
        "class_histogram_hu" by the standardised class histograms of the model's own segmentation."""
        p = self.visual.pyramid(x)
        pooled = p[5].mean(dim=(2, 3, 4))
        logits = None
        if self.hist:  # every sample's segmentation feeds its embedding
            logits = self.visual.seg(p)
            h = self.raw_histograms(x, logits)
            pooled = torch.cat([pooled, ((h - self.hist_mu) / self.hist_sd).to(pooled.dtype)], dim=1)
            logits = logits if segment is True else logits[:segment] if segment else None
        elif segment is True:
            logits = self.visual.seg(p)
        elif segment:
            logits = self.visual.seg([t[:segment] for t in p])
        return pooled, p[5], logits

    def raw_histograms(self, x, logits):
        """The class histograms (log counts, unstandardised) of x under the decoder's logits, with no
        gradient into the decoder."""
        return projection_histograms(x.detach(), logits.detach().float().softmax(dim=1), self.hist)

    def embed_features(self, feat):
        """The L2-normalised vision embedding of projection_inputs' first output."""
        return F.normalize(self.v_center(self.visual.vision_proj(feat)), dim=-1)

    @torch.no_grad()
    def set_hist_norm(self, mu, sd):
        """Standardises the class histograms by (mu, sd) from now on, keeping the embeddings as they
        are: vision_proj.0's histogram columns and bias absorb the change."""
        lin = self.visual.vision_proj[0]
        w = lin.weight[:, self.c4:]
        old_mu, old_sd = self.hist_mu.clone(), self.hist_sd.clone()
        # f = W (h - mu0) / sd0 + b = W' (h - mu) / sd + b'  =>  W' = W sd / sd0, b' = b - W mu0 / sd0 + W mu / sd0
        lin.bias += w @ ((mu - old_mu) / old_sd)
        w.mul_((sd / old_sd).unsqueeze(0))
        self.hist_mu.copy_(mu)
        self.hist_sd.copy_(sd)

    def layer4(self, x):
        return self.visual.pyramid(x)[5]


@torch.no_grad()
def hist_statistics(model, x, cases=128, batch=16):
    """Sets the class histograms' standardisation (set_hist_norm) to their mean and spread over the
    first `cases` volumes of x under the model as it is (evaluation mode); the spread at least 0.1
    (a log count), so that a bin almost always empty is not blown up."""
    was = model.training
    model.eval()
    hs = []
    for i in range(0, min(cases, x.shape[0]), batch):
        xb = x[i:min(i + batch, cases)].float()
        hs.append(model.raw_histograms(xb, model.visual.seg(model.visual.pyramid(xb))))
    h = torch.cat(hs)
    model.set_hist_norm(h.mean(dim=0), h.std(dim=0).clamp(min=0.1) if h.shape[0] > 1 else torch.ones(h.shape[1]))
    model.train(was)


def exported_state(model):
    """{t3d tensor name: tensor} for the model file: vision.*, vision_proj.*, seg.*,
    logit_scale (from T3DVision), text.* (BertModel, no pooler), text_proj.*."""
    out = {}
    for k, v in model.visual.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            out[k] = v
    for k, v in model.text.state_dict().items():
        if k.startswith("pooler.") or k.endswith("position_ids") or k.endswith("token_type_ids"):
            continue
        out["text." + k] = v
    for k, v in model.text_proj.state_dict().items():
        out["text_proj." + k] = v
    if model.hist:  # the histograms' standardisation folded into the first (the engine reads raw log counts)
        w, b = out["vision_proj.0.weight"].clone(), out["vision_proj.0.bias"].clone()
        sd, mu = model.hist_sd.to(w.dtype), model.hist_mu.to(w.dtype)
        b -= w[:, model.c4:] @ (mu / sd)
        w[:, model.c4:] /= sd.unsqueeze(0)
        out["vision_proj.0.weight"], out["vision_proj.0.bias"] = w, b
    # the centring (see Center) folded into the last linear layer of each projection
    last_v = f"vision_proj.{len(model.visual.vision_proj) - 1}.bias"
    last_t = f"text_proj.{len(model.text_proj) - 1}.bias"
    out[last_v] = out[last_v] - model.v_center.running.to(out[last_v].dtype)
    out[last_t] = out[last_t] - model.t_center.running.to(out[last_t].dtype)
    return out


def load_model_file(model, path):
    """Loads a t3d model file (train/export.py's output, e.g. the bundled model) into model, to
    train on from it (train.train --init FILE.safetensors): every tensor exported_state names,
    with the projections' centring at zero (the export folded it into their last biases, so the
    embeddings are the file's). The TMA head and BatchNorm's batch counters stay as the model has
    them: the file does not hold them. Afterwards exported_state(model) equals the file's tensors.
    The class histograms' statistics start at the identity (the file's weights read raw log counts);
    a file without the histograms (or without the eroded ones of "class_histogram_erosion") gives
    them zero weight in vision_proj.0, so the embeddings are the file's until training moves those
    weights."""
    import numpy as np
    import t3d_safetensors as st
    tensors, _ = st.read(path)
    state = model.state_dict()
    new = {}
    for name in exported_state(model):
        key = "visual." + name if "visual." + name in state else name
        if name not in tensors:
            raise RuntimeError(f"{path} does not hold {name}: not a model file of this configuration")
        t = torch.from_numpy(np.ascontiguousarray(tensors[name])).to(state[key].dtype)
        if (name == "vision_proj.0.weight" and model.hist and t.dim() == 2 and t.shape[1] in model.narrower_inputs
                and state[key].shape[1] > t.shape[1]):  # a model file without the (eroded) class histograms:
            t = torch.cat([t, t.new_zeros(t.shape[0], state[key].shape[1] - t.shape[1])], dim=1)  # at weight 0
        if t.shape != state[key].shape:
            raise RuntimeError(f"{path}: {name} is {tuple(t.shape)}, the model's {tuple(state[key].shape)}")
        new[key] = t
    for c in ("v_center.running", "t_center.running", "hist_mu"):
        new[c] = torch.zeros_like(state[c])
    new["hist_sd"] = torch.ones_like(state["hist_sd"])
    state.update(new)
    model.load_state_dict(state)
