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
        self.labels = torch.from_numpy(tensors["labels"].astype(np.int64))  # [N,Z,Y,X]
        self.cases = json.loads(meta["t3d.cases"])
        by_case = {m["case"]: m for m in read_manifest(data_dir)}
        missing = [c for c in self.cases if c not in by_case]
        if missing:
            raise ValueError(f"{cache_path}: cases {missing[:3]} not in {data_dir}/manifest.jsonl")
        self.records = [by_case[c] for c in self.cases]
        self.reports = [r.get("report", "") for r in self.records]

    def __len__(self):
        return len(self.cases)


def _crop(gen, xi, size_range, out_shape):
    """A random axis-aligned crop of xi [1,1,Z,Y,X] (fraction of each side in size_range, placed
    uniformly inside the volume, whole voxels), resampled trilinearly to out_shape (z, y, x)."""
    lo, hi = size_range
    frac = lo + (hi - lo) * torch.rand(3, generator=gen)
    pos = torch.rand(3, generator=gen)
    sl = []
    for a, n in enumerate(xi.shape[2:]):
        size = max(2, min(n, int(round(float(frac[a]) * n))))
        start = int(float(pos[a]) * (n - size + 1))
        sl.append(slice(start, start + size))
    c = xi[:, :, sl[0], sl[1], sl[2]]
    return F.interpolate(c, size=list(out_shape), mode="trilinear", align_corners=False)


def _jitter(gen, x, amount):
    n = x.shape[0]
    a = 1 + amount * (2 * torch.rand(n, 1, 1, 1, 1, generator=gen) - 1)
    b = amount * 0.5 * (2 * torch.rand(n, 1, 1, 1, 1, generator=gen) - 1)
    return x * a.to(x.device) + b.to(x.device)  # drawn on the CPU generator wherever x is


def sample_generator(seed, step, index):
    return torch.Generator().manual_seed((seed * 1000003 + step * 7919 + index) & 0x7FFFFFFFFFFF)


def make_views(x, seed, step, indices, n_local=4, jitter=0.1):
    """TMA views of a batch x [B,1,Z,Y,X]: global 1 = the input with intensity jitter (the
    grid inference sees; used for CLIP and segmentation too), global 2 = a 70-100 % crop
    resampled to the full shape, and n_local 30-50 % crops at half the shape. Every random
    number comes from (seed, step, global sample index)."""
    shape = list(x.shape[2:])
    half = [max(s // 2, 32) for s in shape]
    g1, g2, locs = [], [], [[] for _ in range(n_local)]
    for i, gi in enumerate(indices):
        gen = sample_generator(seed, step, int(gi))
        xi = x[i:i + 1]
        g1.append(_jitter(gen, xi, jitter))
        if n_local == 0:
            continue  # CLIP alone: the crops are not used
        g2.append(_jitter(gen, _crop(gen, xi, (0.7, 1.0), shape), jitter))
        for v in range(n_local):
            locs[v].append(_jitter(gen, _crop(gen, xi, (0.3, 0.5), half), jitter))
    if n_local == 0:
        return [torch.cat(g1)]
    return [torch.cat(g1), torch.cat(g2)] + [torch.cat(v) for v in locs]


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
