"""Training data: the cache `t3d preprocess` writes (model-grid inputs exactly as `t3d analyze`
feeds the encoder, labels on the same grid), the manifest's reports tokenized with Hugging Face's
BertTokenizer over the model's own vocabulary (equal to the C WordPiece tokenizer, see
tests/test-tokenizer-parity.sh), and the TMA views (crops, intensity jitter) seeded per sample
and step, so that any process of a distributed run draws the same augmentations as one process.
Not the preprocessing itself: that stays in the C engine."""
import json
import os
import re
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from train.model import ROOT  # noqa: F401  (sets sys.path for tools/)
import t3d_safetensors as st  # noqa: E402


def read_model_meta(path):
    """(config dict (the "model" object), vocab list, findings list, classes list) of a model file."""
    meta = st.read_raw(path)[2]
    return (json.loads(meta["t3d.config"])["model"], json.loads(meta["t3d.vocab"]),
            json.loads(meta.get("t3d.findings", "[]")), json.loads(meta.get("t3d.classes", "[]")))


def tokenizer_for(vocab, tc):
    from transformers import BertTokenizer
    fd, path = tempfile.mkstemp(suffix=".txt", prefix="t3d-vocab-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    tok = BertTokenizer(path, do_lower_case=tc["lowercase"], strip_accents=tc["strip_accents"],
                        tokenize_chinese_chars=True)
    os.unlink(path)
    return tok


def max_tokens(tc):
    return min(tc["max_positions"], 256)  # as core/model/text.c (T3D_TEXT_MAX_TOKENS)


def drop_technique(report):
    """The report without its TECHNIQUE line (what was scanned, with or without contrast): an
    attribute the image shows plainly, which lets CLIP match reports to volumes without the
    findings."""
    return "\n".join(line for line in report.split("\n") if not line.startswith("TECHNIQUE:"))


def tokenize(tok, texts, length):
    """ids, attention mask [n, longest text of the call (at most length)]: padding only to the
    longest text, not to length; padded positions are masked, so the real tokens' states and [CLS]
    are those of unpadded text (as the C engine, which never pads), at a fraction of the cost."""
    enc = tok(list(texts), max_length=length, truncation=True, padding="longest", return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def read_manifest(data_dir):
    with open(os.path.join(data_dir, "manifest.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class CaseSet:
    """Cached inputs, labels, reports and truth of one phantom folder, in manifest order."""

    def __init__(self, cache_path, data_dir):
        tensors, meta = st.read(cache_path)
        self.x = torch.from_numpy(tensors["input"]).unsqueeze(1)            # [N,1,Z,Y,X] f32
        # [N,Z,Y,X] as stored (uint8: class indices), an eighth of int64's memory (3200 cases:
        # 0.8 GB instead of 6.7 in each training process); users widen a batch at a time
        self.labels = torch.from_numpy(tensors["labels"].astype(np.uint8))
        self.cases = json.loads(meta["t3d.cases"])
        by_case = {m["case"]: m for m in read_manifest(data_dir)}
        missing = [c for c in self.cases if c not in by_case]
        if missing:
            raise ValueError(f"{cache_path}: cases {missing[:3]} not in {data_dir}/manifest.jsonl")
        self.records = [by_case[c] for c in self.cases]
        self.reports = [r.get("report", "") for r in self.records]

    def __len__(self):
        return len(self.cases)


def sample_generator(seed, step, index):
    return torch.Generator().manual_seed((seed * 1000003 + step * 7919 + index) & 0x7FFFFFFFFFFF)


GLOBAL_CROP, LOCAL_CROP = (0.7, 1.0), (0.3, 0.5)  # fraction of each side a view's crop keeps


def view_params(seed, step, indices, n_local, shape, jitter=0.1, input_jitter=None):
    """The random part of make_views, from one draw of uniform numbers per sample (its generator
    seeded by (seed, step, global index)): per view v, the intensity jitter x * a + b (a in 1 +-
    j, b in +- j / 2; j = input_jitter for view 0 when given, else jitter) as ab[v] [B, 2]
    float32, and for the crop views (v >= 1) the crop as starts[v - 1], sizes[v - 1] [B, 3] long: a fraction of each side drawn from GLOBAL_CROP (the
    first) or LOCAL_CROP, placed uniformly inside the volume, in whole voxels. A handful of tensor
    operations for the whole batch: drawn one number at a time, these were some 30 000 small
    operations a step at batch 64 (host time that bound the GPU run)."""
    n_views = 2 + n_local if n_local else 1
    u = torch.stack([torch.rand(2 + 8 * (n_views - 1), generator=sample_generator(seed, step, int(gi)))
                     for gi in indices])
    js = [jitter if v or input_jitter is None else input_jitter for v in range(n_views)]
    ab = [torch.stack([1 + js[v] * (2 * u[:, 2 * v] - 1), js[v] * 0.5 * (2 * u[:, 2 * v + 1] - 1)], dim=1)
          for v in range(n_views)]
    dims = torch.tensor(shape, dtype=torch.float64)
    starts, sizes = [], []
    for c in range(n_views - 1):
        lo, hi = GLOBAL_CROP if c == 0 else LOCAL_CROP
        r = u[:, 2 * n_views + 6 * c: 2 * n_views + 6 * c + 6].double()
        size = torch.minimum(torch.round((lo + (hi - lo) * r[:, :3]) * dims), dims).clamp(min=2)
        starts.append(torch.floor(r[:, 3:] * (dims - size + 1)).long())
        sizes.append(size.long())
    return ab, starts, sizes


def _linear_taps(starts, sizes, n_out):
    """Per sample, the two source indices and the weight of the second along one axis for a
    trilinear resize (align_corners=False, as F.interpolate) of the crop [start, start + size) to
    n_out samples, from starts, sizes [B] long: [B, n_out] long, long, float. The source positions
    are computed in float64: in float32 their rounding (1e-7 of up to a few hundred voxels) moves
    the weights enough to show as 1e-6 of the volume's range next to sharp edges (measured on
    F.interpolate's own float32 resize)."""
    size = sizes.double()[:, None]
    o = torch.arange(n_out, dtype=torch.float64)[None, :]
    src = ((o + 0.5) * (size / n_out) - 0.5).clamp(min=0)  # PyTorch's source index, align_corners=False
    i0 = src.floor()
    lam = (src - i0).float()
    last = sizes[:, None] - 1
    i0 = torch.minimum(i0.long(), last)
    i1 = torch.minimum(i0 + 1, last)
    return starts[:, None] + i0, starts[:, None] + i1, lam


def resize_crops_batched(x, starts, sizes, out_shape):
    """x [B,1,Z,Y,X]; sample i's crop [starts[i], starts[i] + sizes[i]) (per axis z, y, x)
    resized trilinearly to out_shape, every sample at once and one axis after another (the
    interpolation is separable: F.interpolate's weights on each crop alone, up to float
    rounding), so a batch takes a few dozen tensor operations whatever its size: the GPU path.
    The index and weight tables are made on the CPU and moved in one copy per axis."""
    dev = x.device
    for axis in range(3):
        i0, i1, lam = _linear_taps(starts[:, axis], sizes[:, axis], out_shape[axis])
        packed = torch.stack([i0.float(), i1.float(), lam]).to(dev)  # indices < 2^24: exact in float
        i0, i1, lam = packed[0].long(), packed[1].long(), packed[2]
        dim = 2 + axis
        view = [x.shape[0], 1, 1, 1, 1]
        view[dim] = out_shape[axis]
        shape = list(x.shape)
        shape[dim] = out_shape[axis]
        i0, i1, lam = i0.view(view).expand(shape), i1.view(view).expand(shape), lam.view(view)
        x = x.gather(dim, i0) * (1 - lam) + x.gather(dim, i1) * lam
    return x


def resize_crops_each(x, starts, sizes, out_shape):
    """The same, one sample at a time with F.interpolate: the CPU path (there F.interpolate's
    separable kernel beats the batched gathers 4x: 0.14 against 0.6 s for a batch of 64 at 64^3)."""
    out = []
    for i in range(x.shape[0]):
        (z, y, w), (d, h, n) = starts[i].tolist(), sizes[i].tolist()
        out.append(F.interpolate(x[i:i + 1, :, z:z + d, y:y + h, w:w + n], size=list(out_shape), mode="trilinear",
                                 align_corners=False))
    return torch.cat(out)


def resize_crops(x, starts, sizes, out_shape):
    return (resize_crops_batched if x.is_cuda else resize_crops_each)(x, starts, sizes, out_shape)


def make_views(x, seed, step, indices, n_local=4, jitter=0.1, input_jitter=None):
    """TMA views of a batch x [B,1,Z,Y,X]: global 1 = the input with intensity jitter (the
    grid inference sees; used for CLIP and segmentation too), global 2 = a 70-100 % crop
    resampled to the full shape, and n_local 30-50 % crops at half the shape. Every random
    number comes from (seed, step, global sample index) (view_params); the jitter is applied to
    the whole batch at once, and on a GPU the crops too (per-sample work was thousands of small
    kernels and host copies a step there)."""
    shape = list(x.shape[2:])
    half = [max(s // 2, 32) for s in shape]
    ab, starts, sizes = view_params(seed, step, indices, n_local, shape, jitter, input_jitter)

    def jittered(v, t):
        coef = ab[v].to(t.device)
        return t * coef[:, 0].view(-1, 1, 1, 1, 1) + coef[:, 1].view(-1, 1, 1, 1, 1)

    views = [jittered(0, x)]
    for c in range(len(starts)):
        views.append(jittered(1 + c, resize_crops(x, starts[c], sizes[c], shape if c == 0 else half)))
    return views


def sentences(report):
    """The report's sentences without section headings ("FINDINGS:", "IMPRESSION:")."""
    out = []
    for line in report.replace("\r", "").split("\n"):
        line = line.strip()
        if ":" in line and line.split(":", 1)[0].isupper():
            line = line.split(":", 1)[1].strip()
        line = re.sub(r"^(\d+[.)]|[-*])\s+", "", line)
        for part in re.split(r"(?<=[.;])\s+(?=[A-Za-z])", line):
            part = part.strip()
            if part:
                out.append(part)
    return out


def augment_parts(report, gen, keep_full=0.5):
    """Text augmentation seeded like the views: [the whole report] with probability keep_full,
    otherwise a random subset of its sentences (1..n, order kept), so that single statements --
    the form of the zero-shot prompts -- are aligned with the volumes they describe. The text is
    " ".join of the parts (TokenCache tokenizes the parts)."""
    sents = sentences(report)
    if len(sents) <= 1 or float(torch.rand(1, generator=gen)) < keep_full:
        return [report]
    k = 1 + int(torch.randint(len(sents), (1,), generator=gen))
    pick = sorted(torch.randperm(len(sents), generator=gen)[:k].tolist())
    return [sents[i] for i in pick]


class TokenCache:
    """tokenize() for texts given as parts joined by spaces, with every part's WordPieces
    memoised: BERT's basic tokenizer splits on whitespace first, so the ids of " ".join(parts) are
    the parts' ids concatenated (checked against tokenize() in train/checks.py). The Python
    tokenizer costs ~0.3 s a batch of 16 reports otherwise, a fifth of a training step."""

    def __init__(self, tok):
        self.tok, self.memo = tok, {}
        self.cls, self.sep, self.pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id

    def _ids(self, part):
        ids = self.memo.get(part)
        if ids is None:
            ids = self.memo[part] = self.tok.encode(part, add_special_tokens=False)
        return ids

    def __call__(self, parts_list, length):
        rows = []
        for parts in parts_list:
            ids = [i for p in parts for i in self._ids(p)][:length - 2]
            rows.append([self.cls] + ids + [self.sep])
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        return ids, mask


def epoch_order(n, seed, epoch):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 65537 + epoch))


def global_batch_indices(n, batch, seed, step):
    """Indices of the global batch for a step: epochs of a seeded permutation, dropped tail."""
    per_epoch = n // batch
    epoch, k = divmod(step, per_epoch)
    return epoch_order(n, seed, epoch)[k * batch:(k + 1) * batch]
