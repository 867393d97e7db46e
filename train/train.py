"""T3D training loop: CLIP (symmetric InfoNCE, learnable logit scale capped at 100) + lambda*TMA
pre-training and Dice + cross-entropy segmentation, chosen per run by loss weights; AdamW, linear
warm-up then cosine decay, gradient clipping, bf16 autocast on GPUs that have it; atomic
checkpoints every --ckpt-every steps with resume after kill -9; progress bar, CSV and TensorBoard
metrics; one or many processes (torchrun: gloo on CPU, NCCL on GPU).

Distributed semantics: the global batch (--batch) is drawn from a seeded permutation and split
in rank order; augmentations are seeded per (seed, step, sample index); CLIP logits and Sinkhorn
codes cover the global batch; gradients are averaged with one all_reduce. BatchNorm statistics
and the projections' centring are per process by default (as DDP without SyncBatchNorm); a
one-process run reproduces that exactly with --bn-shards WORLD (the vision tower sees the batch in
WORLD chunks). --sync-bn makes them global (nn.SyncBatchNorm on GPUs, train/model.py
GlobalBatchNorm3d over gloo on CPUs) and deals the global batch round-robin (rank r takes samples
r, r + WORLD, ...), so that the decoder's first --seg-batch samples are the global batch's first
ones too: the run then has the gradients of one process on the whole batch.

  python -m train.train --template init.safetensors --cache c.safetensors --data DIR --out RUN ...
Not the exporter (train/export.py) and not the data preparation (`t3d preprocess`)."""
import argparse
import csv
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn

from train import data as D
from train import losses as L
from train.model import GlobalBatchNorm3d, T3DModel, hist_statistics, load_model_file, load_weights, use_global_bn


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="T3D pre-training / fine-tuning")
    ap.add_argument("--template", required=True, help="t3d model file giving config, vocab, findings, classes")
    ap.add_argument("--cache", required=True, help="training cache written by `t3d preprocess`")
    ap.add_argument("--data", required=True, help="phantom folder (manifest.jsonl with reports)")
    ap.add_argument("--out", required=True, help="run folder: ckpt.pt, metrics.csv, tb/, final.pt")
    ap.add_argument("--init", help="start from this checkpoint's weights (e.g. the pre-training run), or from a "
                    "t3d model file's (FILE.safetensors, e.g. the bundled model; the TMA head starts afresh)")
    ap.add_argument("--steps", type=int, default=100, help="number of steps (the cap with --time-budget)")
    ap.add_argument("--time-budget", type=float, default=0,
                    help="minutes of wall time: the cosine schedule follows elapsed time and the run ends "
                         "when it is spent (for shared machines whose speed is unknown in advance)")
    ap.add_argument("--batch", type=int, default=8, help="global batch (split over processes)")
    ap.add_argument("--lr", type=float, default=3e-4,
                    help="peak learning rate; 3e-3 and above collapse the CLIP embeddings to one vector "
                         "(loss stays at ln(batch)), README: the bundled model")
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--clip-grad", type=float, default=1.0)
    ap.add_argument("--w-clip", type=float, default=1.0, help="weight of the CLIP loss")
    ap.add_argument("--w-tma", type=float, default=0.5, help="lambda: weight of the TMA loss (0: CLIP alone)")
    ap.add_argument("--w-seg", type=float, default=0.0, help="weight of Dice + cross-entropy")
    ap.add_argument("--reinit-text", action="store_true",
                    help="with --init: start the text tower and its projection afresh")
    ap.add_argument("--logit-scale", type=float, default=0,
                    help="with --init: restart the CLIP logit scale at this value (e.g. 50)")
    ap.add_argument("--text-lr-scale", type=float, default=0.1,
                    help="learning rate of the text tower relative to --lr")
    ap.add_argument("--no-center", action="store_true",
                    help="no centring of the projection outputs (train/model.py Center; the bundled "
                         "model's first stage ran without it)")
    ap.add_argument("--seg-lr-scale", type=float, default=1.0,
                    help="learning rate of the segmentation decoder relative to --lr (CLIP does not reach it)")
    ap.add_argument("--drop-technique", action="store_true",
                    help="train on the reports without their TECHNIQUE line (contrast and coverage, which the "
                         "image shows: a shortcut for CLIP that needs no finding)")
    ap.add_argument("--seg-from", type=float, default=0.0,
                    help="the decoder (Dice + cross-entropy) joins once this fraction of the run is done: a "
                         "contrastive step without it is ~3x cheaper on a CPU, so the alignment gets the early "
                         "steps and the encoder the dense gradient later")
    ap.add_argument("--seg-batch", type=int, default=0,
                    help="samples of the global batch the decoder sees (0: all): the full-resolution decoder costs "
                         "~12x the encoder on the CPU, so a contrastive batch larger than the segmentation one")
    ap.add_argument("--freeze-encoder", action="store_true",
                    help="segmentation fine-tuning (the second stage): only the decoder trains; the encoder, "
                         "its BatchNorm statistics, the projections and the text tower stay as --init left them "
                         "(the encoder runs in inference mode, as analyze runs it), so zero-shot and retrieval "
                         "do not change; use with --w-clip 0 --w-tma 0")
    ap.add_argument("--ce-weights", help="comma-separated cross-entropy weight per segmentation class (e.g. "
                    "1,1,1,1,1,1,1,1,8 to emphasise the last class); default all 1")
    ap.add_argument("--freeze-vision", action="store_true",
                    help="alignment on the frozen vision tower: the encoder and decoder stay as --init left them "
                         "(inference mode), what the vision projection reads is computed once for every case, and "
                         "CLIP trains the vision projection, the text tower and its projection alone (no volume "
                         "passes a step, so steps cost milliseconds); segmentation does not change. Use with "
                         "--w-tma 0 --w-seg 0 --input-jitter 0 (the cached inputs are the unaugmented ones)")
    ap.add_argument("--bn-recal", type=int, default=0,
                    help="at the end, re-estimate the vision tower's BatchNorm statistics over this many "
                         "batches of the (unaugmented) training inputs, with the final weights")
    ap.add_argument("--prototypes", type=int, default=32)
    ap.add_argument("--jitter", type=float, default=0.1,
                    help="intensity jitter of the TMA crop views: x * a + b, a in 1 +- J, b in +- J / 2")
    ap.add_argument("--input-jitter", type=float, default=None,
                    help="the same for the input view (CLIP, segmentation, TMA's first global view); "
                         "default: --jitter")
    ap.add_argument("--text-init-std", type=float, default=0.1, help="BERT initializer range (HF default 0.02)")
    ap.add_argument("--text-aug", type=float, default=0.5,
                    help="probability of replacing a report by a random subset of its sentences")
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--keep-at", type=int, default=0,
                    help="also keep the checkpoint of this step as step-N.pt (a branch point, e.g. for an ablation)")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bn-shards", type=int, default=1, help="one-process emulation of WORLD processes' BN")
    ap.add_argument("--sync-bn", action="store_true",
                    help="BatchNorm statistics and the projections' centring over the global batch (nn.SyncBatchNorm "
                         "on GPUs, GlobalBatchNorm3d over gloo on CPUs), the batch dealt round-robin: one process's gradients")
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto")
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--dump-grads", help="after step 1, save the averaged gradients here (tests)")
    ap.add_argument("--export", help="write the t3d model file here at the end (rank 0)")
    ap.add_argument("--findings", help="JSON findings list (name, positive, negative) for the export")
    return ap.parse_args(argv)


def progress_of(step, elapsed, a):
    """Fraction of the run done: by steps, or by wall time when --time-budget is set."""
    p = step / a.steps
    if a.time_budget > 0:
        p = max(p, elapsed / (60.0 * a.time_budget))
    return min(1.0, p)


def lr_at(step, progress, a):
    """Linear warm-up over --warmup steps, then cosine decay to 2 % over the run's progress."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    return a.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def param_groups(model, wd, text_lr_scale=1.0, seg_lr_scale=1.0):
    """AdamW groups: weight decay except on biases and norms; the text tower (BERT and its
    projection) at text_lr_scale times the learning rate (a post-LN transformer from scratch
    collapses at the learning rates the small ResNet wants), the segmentation decoder at
    seg_lr_scale times it."""
    groups = {}
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (p.ndim <= 1 or "norm" in n.lower() or "bn" in n)
        scale = 1.0
        if n.startswith("text.") or n.startswith("text_proj."):
            scale = text_lr_scale
        elif n.startswith("visual.seg."):
            scale = seg_lr_scale
        groups.setdefault((decay, scale), []).append(p)
    return [{"params": ps, "weight_decay": wd if decay else 0.0, "lr_scale": scale}
            for (decay, scale), ps in sorted(groups.items())]


def encoder_modules(model):
    """The vision tower's modules outside the decoder (ResNet and projection)."""
    return [m for n, m in model.visual.named_children() if n != "seg"]


@torch.no_grad()
def recalibrate_bn(model, x, batches, batch, seed, decoder_only=False):
    """Re-estimates every BatchNorm's running statistics of the vision tower (encoder and decoder;
    the decoder's alone with decoder_only, the encoder then running on its own statistics, as in
    --freeze-encoder) as the plain average over `batches` batches of x with the final weights
    (momentum None), so that inference normalises with statistics of the weights it runs, not an
    average over the changing weights of the run."""
    was = model.training
    model.train()
    if decoder_only:  # the encoder keeps the statistics it was trained with
        for m in encoder_modules(model):
            m.eval()
    with bn_momentum(model.visual.seg if decoder_only else model.visual, None) as bns:
        for m in bns:
            m.reset_running_stats()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).to(x.device)
        dev = next(model.parameters()).device
        for b in range(min(batches, len(x) // batch)):
            model.visual.seg(model.visual.pyramid(x[order[b * batch:(b + 1) * batch]].to(dev)))
    model.train(was)


def chunked(fn, x, shards):
    """fn over shards chunks of x, outputs concatenated (BatchNorm sees each chunk alone)."""
    if shards <= 1:
        return fn(x)
    outs = [fn(c) for c in x.chunk(shards)]
    if isinstance(outs[0], tuple):
        return tuple(None if o[0] is None else torch.cat(o) for o in zip(*outs))
    return torch.cat(outs)


class Progress:
    def __init__(self, total, start, label):
        self.total, self.start_step, self.label = total, start, label
        self.t0 = time.time()
        self.tty = sys.stderr.isatty()

    def show(self, step, loss, extra="", eta_s=None):
        done = step + 1 - self.start_step
        el = time.time() - self.t0
        rate = done / el if el > 0 else 0.0
        eta = (self.total - step - 1) / rate if rate > 0 else 0.0
        if eta_s is not None:
            eta = min(eta, max(0.0, eta_s))
        width = 24
        fill = int(width * (step + 1) / self.total)
        bar = "#" * fill + "." * (width - fill)
        msg = (f"{self.label} [{bar}] {step + 1}/{self.total} loss {loss:.4f} {extra} | "
               f"{rate:.2f} steps/s ETA {int(eta) // 60:02d}:{int(eta) % 60:02d}")
        sys.stderr.write(("\r" + msg) if self.tty else (msg + "\n"))
        sys.stderr.flush()
        return rate


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def average_gradients(model, world):
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    off = 0
    for p, g in zip(model.parameters(), grads):
        n = g.numel()
        p.grad = flat[off:off + n].view_as(p).clone()
        off += n


class bn_momentum:
    """Every BatchNorm of module at this momentum inside the block, restored after it. 0: layers
    normalise with the batch's statistics but leave their running statistics alone (the TMA crops,
    zoomed and smaller, must not pull the statistics inference uses away from those of the full
    input grid it sees); None: the running statistics become a plain average (recalibrate_bn)."""

    def __init__(self, module, momentum):
        self.bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.momentum = momentum

    def __enter__(self):
        self.saved = [m.momentum for m in self.bns]
        for m in self.bns:
            m.momentum = self.momentum
        return self.bns

    def __exit__(self, *exc):
        for m, mom in zip(self.bns, self.saved):
            m.momentum = mom
        return False


CSV_FIELDS = ["step", "loss", "clip", "tma", "seg", "lr", "logit_scale", "grad_norm", "steps_per_s", "elapsed_s"]


def collapse_warning(step, l_clip, emb, temb, batch, warmup):
    """A line for stderr when the CLIP loss sits at ln(batch) with every embedding of the batch the
    same vector (the failure of the bundled model's run at lr 3e-3 / 6e-3), else None."""
    if step < warmup or emb.shape[0] < 2:
        return None
    off = ~torch.eye(emb.shape[0], dtype=torch.bool, device=emb.device)
    cos_v = float((emb @ emb.t())[off].mean())
    cos_t = float((temb @ temb.t())[off].mean())
    if abs(float(l_clip) - math.log(batch)) < 1e-2 and min(cos_v, cos_t) > 0.999:
        return (f"warning: step {step + 1}: embeddings collapsed (mean pairwise cosine volume {cos_v:.5f}, "
                f"text {cos_t:.5f}; CLIP {float(l_clip):.4f} = ln({batch})): lower --lr")
    return None


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    world, rank = 1, 0
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        use_cuda = torch.cuda.is_available() and a.device != "cpu"
        dist.init_process_group("nccl" if use_cuda else "gloo")
        world, rank = dist.get_world_size(), dist.get_rank()
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        torch.backends.cudnn.benchmark = True  # every step has the same shapes: find each conv's fastest algorithm once
    dev = torch.device(a.device, torch.cuda.current_device()) if a.device == "cuda" else torch.device("cpu")
    if a.batch % world:
        sys.exit(f"--batch {a.batch} is not a multiple of {world} processes")
    local = a.batch // world
    seg_global = a.seg_batch if 0 < a.seg_batch < a.batch else a.batch
    if a.sync_bn and a.bn_shards > 1:
        sys.exit("--bn-shards emulates per-process BatchNorm; --sync-bn makes it global: use one of them")
    chunks = world * max(a.bn_shards, 1)  # BatchNorm chunks of the global batch
    if seg_global % chunks:
        sys.exit(f"--seg-batch {seg_global} is not a multiple of {chunks} processes x shards")
    seg_chunk = seg_global // chunks  # decoder samples per BN chunk: its first ones
    local_chunk = a.batch // chunks
    bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported() and not a.no_bf16

    cfg, vocab, findings, classes = D.read_model_meta(a.template)
    cases = D.CaseSet(a.cache, a.data)
    if dev.type == "cuda":  # the whole cache on the GPU: batches and their views are cut there
        cases.x, cases.labels = cases.x.to(dev), cases.labels.to(dev)
    if a.drop_technique:
        cases.reports = [D.drop_technique(r) for r in cases.reports]
    tok = D.tokenizer_for(vocab, cfg["text"])
    ids, mask = D.tokenize(tok, cases.reports, D.max_tokens(cfg["text"]))
    tok_cache = D.TokenCache(tok)
    n_classes = cfg.get("segmentation", {}).get("classes", 0)
    ce_weights = None
    if a.ce_weights:
        ce_weights = torch.tensor([float(v) for v in a.ce_weights.split(",")])
        if ce_weights.numel() != n_classes or not bool((ce_weights > 0).all()):
            sys.exit(f"--ce-weights needs {n_classes} positive weights, got {a.ce_weights}")
    if a.w_seg > 0 and int(cases.labels.max()) >= n_classes:
        sys.exit(f"labels reach {int(cases.labels.max())}, the model has {n_classes} classes")

    torch.manual_seed(a.seed)
    model = T3DModel(cfg, prototypes=a.prototypes, text_init_std=a.text_init_std, center=not a.no_center)
    if a.init and a.init.endswith(".safetensors"):  # a t3d model file (the TMA head starts afresh)
        load_model_file(model, a.init)
    elif a.init:
        load_weights(model, torch.load(a.init, map_location="cpu")["model"])
        if a.logit_scale > 0:
            with torch.no_grad():
                model.logit_scale.fill_(math.log(a.logit_scale))
        if a.reinit_text:  # fresh text tower and projection (see TEXT_INIT_STD in train/model.py)
            fresh = T3DModel(cfg, prototypes=a.prototypes, text_init_std=a.text_init_std)
            model.text.load_state_dict(fresh.text.state_dict())
            model.text_proj.load_state_dict(fresh.text_proj.state_dict())
    if model.hist and not os.path.exists(os.path.join(a.out, "ckpt.pt")):  # (a resumed run has them)
        hist_statistics(model, cases.x[:128].cpu())
    if a.freeze_vision:
        if a.w_clip <= 0 or a.w_tma > 0 or a.w_seg > 0 or a.input_jitter != 0 or a.freeze_encoder:
            sys.exit("--freeze-vision trains the projections and the text tower by CLIP: it needs --w-clip > 0, "
                     "--w-tma 0, --w-seg 0, --input-jitter 0 and no --freeze-encoder")
        for n, p in model.named_parameters():
            p.requires_grad = not n.startswith(("visual.vision.", "visual.seg.", "tma."))
    if a.freeze_encoder:
        if a.w_clip > 0 or a.w_tma > 0 or a.w_seg <= 0 or model.visual.seg is None:
            sys.exit("--freeze-encoder trains the decoder alone: it needs --w-clip 0 --w-tma 0 and --w-seg > 0")
        for n, p in model.named_parameters():
            p.requires_grad = n.startswith("visual.seg.")
    if a.sync_bn:  # torch 1.13's SyncBatchNorm runs on GPUs only; GlobalBatchNorm3d is its gloo form
        if dev.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            use_global_bn(model.visual)
        model.v_center.sync = model.t_center.sync = True
    model.to(dev)
    opt = torch.optim.AdamW(param_groups(model, a.wd, a.text_lr_scale, a.seg_lr_scale), lr=a.lr, betas=(0.9, 0.98))
    os.makedirs(a.out, exist_ok=True)
    ckpt_path = os.path.join(a.out, "ckpt.pt")
    start, elapsed_before = 0, 0.0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu")
        load_weights(model, ck["model"])
        opt.load_state_dict(ck["opt"])
        start = ck["step"]
        elapsed_before = ck.get("elapsed_s", 0.0)
        if rank == 0:
            print(f"resumed from {ckpt_path} at step {start}", file=sys.stderr, flush=True)

    csv_path = os.path.join(a.out, "metrics.csv")
    tb = None
    if rank == 0:
        rows = []
        if start and os.path.exists(csv_path):
            with open(csv_path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter
            tb = SummaryWriter(os.path.join(a.out, "tb"), purge_step=start + 1 if start else None)
        except Exception as e:  # TensorBoard is optional; CSV is always written
            print(f"TensorBoard unavailable ({e}); metrics go to CSV only", file=sys.stderr)
        with open(os.path.join(a.out, "args.json"), "w") as f:
            json.dump(vars(a), f, indent=1)

    pending = []  # rank 0: (step, its scalars on the device, lr, elapsed s) not yet in the CSV

    def metric_rows(items):
        """The CSV rows of the pending steps, their scalars brought to the host in one copy; empties
        items."""
        host = torch.stack([it[1] for it in items]).cpu().tolist()
        rows = [{"step": d, "loss": h[0], "clip": h[1], "tma": h[2], "seg": h[3], "lr": lr, "logit_scale": h[4],
                 "grad_norm": h[5], "elapsed_s": el} for (d, _, lr, el), h in zip(items, host)]
        items.clear()
        return rows

    def write_rows(rows):
        with open(csv_path, "a", newline="") as f:
            csv.DictWriter(f, CSV_FIELDS).writerows(rows)
        if tb:
            for r in rows:
                for k in ("loss", "clip", "tma", "seg", "lr", "logit_scale", "grad_norm"):
                    tb.add_scalar(k, r[k], r["step"])

    vfeat = None
    if a.freeze_vision:  # the frozen towers' projection inputs, once (evaluation mode, as analyze runs them)
        model.eval()
        with torch.no_grad():
            vfeat = torch.cat([model.projection_inputs(cases.x[i:i + 16].to(dev))[0]
                               for i in range(0, len(cases), 16)])
        if rank == 0:
            print(f"--freeze-vision: projection inputs of {vfeat.shape[0]} cases, {vfeat.shape[1]} each",
                  file=sys.stderr, flush=True)
    prog = Progress(a.steps, start, os.path.basename(os.path.normpath(a.out)))
    done = start
    t_start = time.time()
    model.train()
    if a.freeze_vision:
        model.visual.vision.eval()
        if model.visual.seg is not None:
            model.visual.seg.eval()
    if a.freeze_encoder:  # inference mode: BatchNorm and the projections' centring keep their statistics
        for m in encoder_modules(model) + [model.v_center, model.t_center]:
            m.eval()
    for step in range(start, a.steps):
        progress = progress_of(step, elapsed_before + time.time() - t_start, a)
        if world > 1:  # every process stops at the same step
            pt = torch.tensor([progress], device=dev)
            dist.all_reduce(pt, op=dist.ReduceOp.MAX)
            progress = float(pt)
        if progress >= 1.0:
            break
        gidx = D.global_batch_indices(len(cases), a.batch, a.seed, step)
        lidx = gidx[rank::world] if a.sync_bn else gidx[rank * local:(rank + 1) * local]
        use_tma = a.w_tma > 0
        use_seg = a.w_seg > 0 and progress >= a.seg_from
        if vfeat is None:
            xb = cases.x[lidx.to(cases.x.device)]
            views = D.make_views(xb, a.seed, step, lidx.tolist(), n_local=4 if use_tma else 0, jitter=a.jitter,
                                 input_jitter=a.input_jitter)
            views = [v.to(dev) for v in views]
        if a.text_aug > 0:
            parts = [D.augment_parts(cases.reports[i], D.sample_generator(a.seed + 17, step, i), 1 - a.text_aug)
                     for i in lidx.tolist()]
            ib, mb = tok_cache(parts, D.max_tokens(cfg["text"]))
            ib, mb = ib.to(dev), mb.to(dev)
        else:
            keep = int(mask[lidx].sum(dim=1).max())  # drop columns that are padding for the whole batch
            ib, mb = ids[lidx, :keep].to(dev), mask[lidx, :keep].to(dev)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, progress, a) * g.get("lr_scale", 1.0)
        model.tma.normalize_prototypes()
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
            seg_arg = (True if seg_chunk == local_chunk else seg_chunk) if use_seg else False
            if vfeat is not None:
                emb, f4, logits = model.embed_features(vfeat[lidx.to(vfeat.device)]), None, None
            else:
                emb, f4, logits = chunked(lambda c: model.encode_volume(c, segment=seg_arg), views[0], a.bn_shards)
            loss = torch.zeros((), device=dev)
            l_clip = torch.zeros((), device=dev)
            if a.w_clip > 0 or use_tma:  # the text tower only when a loss uses it
                # in --bn-shards chunks too: the text centring uses per-process batch means, as BN
                temb, tokens = chunked(lambda r: model.encode_text(ib[r], mb[r]), torch.arange(ib.shape[0]),
                                       a.bn_shards)
                l_clip = L.clip_loss(emb.float(), temb.float(), model.logit_scale)
                loss = a.w_clip * l_clip
            l_tma = torch.zeros((), device=dev)
            if use_tma:
                scores = [model.tma(f4, tokens, mb)]
                with bn_momentum(model.visual, 0.0):
                    for v in views[1:]:
                        scores.append(model.tma(chunked(model.layer4, v, a.bn_shards), tokens, mb))
                l_tma = L.tma_loss([s.float() for s in scores])
                loss = loss + a.w_tma * l_tma
            l_seg = torch.zeros((), device=dev)
            if use_seg:
                sidx = lidx.view(-1, local_chunk)[:, :seg_chunk].reshape(-1)  # the samples the decoder saw
                l_seg = L.dice_ce_loss(logits.float(), cases.labels[sidx.to(cases.labels.device)].to(dev).long(), n_classes,
                                      None if ce_weights is None else ce_weights.to(dev))
                loss = loss + a.w_seg * l_seg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            average_gradients(model, world)
        if a.dump_grads and step == start:
            if rank == 0:
                torch.save({n: p.grad.detach().cpu().clone() for n, p in model.named_parameters()
                            if p.grad is not None}, a.dump_grads)
            break
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip_grad)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(max=math.log(L.LOGIT_SCALE_MAX))
        done = step + 1
        if rank == 0:
            # the step's scalars stay on the device until a progress line or a checkpoint needs
            # them: a host copy per step would wait for the GPU every step, so the host could not
            # queue the next step's kernels while this one runs
            pending.append((done, torch.stack([t.detach().float().reshape(()) for t in
                                               (loss, l_clip, l_tma, l_seg, model.logit_scale.detach().exp(), gnorm)]),
                            opt.param_groups[0]["lr"], round(elapsed_before + time.time() - t_start, 2)))
            show = done % a.log_every == 0 or done == a.steps or done == start + 1
            save = done % a.ckpt_every == 0 or done == a.steps or done == a.keep_at
            if show or save:
                rows = metric_rows(pending)
                vals = rows[-1]
                if show:
                    left = (60.0 * a.time_budget - elapsed_before - (time.time() - t_start)) if a.time_budget > 0 else None
                    rate = prog.show(step, vals["loss"], f"clip {vals['clip']:.3f} tma {vals['tma']:.3f} seg {vals['seg']:.3f}",
                                     left)
                    vals["steps_per_s"] = round(rate, 4)
                    if a.w_clip > 0:
                        with torch.no_grad():
                            warn = collapse_warning(step, l_clip, emb.float(), temb.float(), a.batch, a.warmup)
                        if warn:
                            print("\n" + warn, file=sys.stderr, flush=True)
                write_rows(rows)
            if save:
                ck = {"model": model.state_dict(), "opt": opt.state_dict(), "step": done,
                      "elapsed_s": elapsed_before + time.time() - t_start, "args": vars(a)}
                atomic_save(ck, ckpt_path)
                if done == a.keep_at:
                    atomic_save(ck, os.path.join(a.out, f"step-{done}.pt"))
    if rank == 0 and pending:  # the steps since the last line, before the final checkpoint
        write_rows(metric_rows(pending))
    if rank == 0:
        if tb:
            tb.close()
        if not a.dump_grads and done > start:  # a run that ends on its time budget can be resumed too
            atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "step": done,
                         "elapsed_s": elapsed_before + time.time() - t_start, "args": vars(a)}, ckpt_path)
        if not a.dump_grads and a.bn_recal > 0 and model.visual.seg is not None and not a.freeze_vision:
            GlobalBatchNorm3d.enabled = False  # rank 0 alone: local statistics, no exchange
            try:
                recalibrate_bn(model, cases.x, a.bn_recal, local, a.seed, decoder_only=a.freeze_encoder)
            finally:
                GlobalBatchNorm3d.enabled = True
            print(f"BatchNorm statistics re-estimated over {a.bn_recal} batches", file=sys.stderr)
        if not a.dump_grads:
            atomic_save({"model": model.state_dict(), "step": done, "elapsed_s": elapsed_before + time.time() - t_start,
                         "args": vars(a)},
                        os.path.join(a.out, "final.pt"))
            if a.export:
                from train.export import export
                fl = json.load(open(a.findings)) if a.findings else findings
                export(model, a.template, a.export, findings=fl)
                print(f"wrote {a.export}", file=sys.stderr)
        sys.stderr.write("\n")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
