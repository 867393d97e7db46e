"""Checks behind the trainer's tests (tests/test-train-*.sh), each printing both values on failure:
  inputs DIR CACHE RUN T3D  -- training inputs are inference inputs: the exported model run by
                               `t3d analyze` on each DICOM series gives the embedding PyTorch gives
                               on the cached tensor, and the same zero-shot logits (C tokenizer and
                               text tower = HF BertTokenizer + BertModel); the files open with
                               safetensors.safe_open; the trainer's TokenCache = tokenize()
  grads A B                 -- two gradient dumps agree (distributed vs one process)
  resume CSV KILLED_AT INTERVAL -- after kill -9 and rerun the run resumed losing <= one interval
  views                     -- the TMA views (crops, jitter, --input-jitter) and train/probe.py's
                               histogram towers and --jitter
  phase                     -- train/model.py's phase-split stride-2 convolution equals F.conv3d
                               (output, input and weight gradients) on odd and even sizes, its
                               pointwise head convolution nn.Conv3d, and train/losses.py's Dice +
                               CE its one-hot reference (value and gradient)
Not a test runner."""
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

from train import data as D
from train.model import T3DModel, load_weights

failures = []


def need(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL " + msg)
    else:
        print("ok   " + msg)


def worst(*errors):
    """The largest of the errors; NaN if any is NaN (Python's max keeps or drops a NaN by its place)."""
    return math.nan if any(math.isnan(e) for e in errors) else max(errors)


def check_inputs(data_dir, cache, run, t3d):
    from safetensors import safe_open
    model_file = run + "/model.safetensors"
    for path in (model_file, cache):
        with safe_open(path, "np") as f:
            need(len(list(f.keys())) > 0, f"safetensors.safe_open opens {path.rsplit('/', 1)[-1]}")
    cfg, vocab, findings, _ = D.read_model_meta(model_file)
    model = T3DModel(cfg)
    load_weights(model, torch.load(run + "/final.pt", map_location="cpu")["model"])
    model.eval()
    cases = D.CaseSet(cache, data_dir)
    tok = D.tokenizer_for(vocab, cfg["text"])
    cache_tok = D.TokenCache(tok)
    for step in range(8):  # the trainer's memoised tokenizer = the tokenizer on the joined text
        parts = [D.augment_parts(r, D.sample_generator(18, step, i), 0.5) for i, r in enumerate(cases.reports)]
        want = D.tokenize(tok, [" ".join(p) for p in parts], D.max_tokens(cfg["text"]))
        got = cache_tok(parts, D.max_tokens(cfg["text"]))
        need(all(torch.equal(x, y) for x, y in zip(want, got)),
             f"TokenCache ids and mask = tokenize() on {len(parts)} augmented reports (step {step})")
    with torch.no_grad():
        ids, mask = D.tokenize(tok, [f[k] for f in findings for k in ("positive", "negative")],
                               D.max_tokens(cfg["text"]))
        temb, _ = model.encode_text(ids, mask)
        scale = float(model.logit_scale.exp().clamp(max=100))
        for i, rec in enumerate(cases.records):
            # fp32: PyTorch's is the reference (auto would be bf16 on a CPU with AMX)
            out = subprocess.run([t3d, "analyze", data_dir + "/" + rec["series"], "--model", model_file, "--json",
                                  "--precision", "fp32"],
                                 check=True, capture_output=True, text=True).stdout
            res = json.loads(out)
            ref = torch.tensor(res["embedding"])
            emb, _, _ = model.encode_volume(cases.x[i:i + 1], segment=False)
            cos = float((emb[0] * ref).sum())
            need(cos > 0.99999, f"{rec['case']}: cosine(PyTorch on the cache, t3d analyze on DICOM) = {cos:.7f} > 0.99999")
            lp = scale * emb[0] @ temb[0::2].t()
            ln = scale * emb[0] @ temb[1::2].t()
            cl = torch.tensor([[f["logit_positive"], f["logit_negative"]] for f in res["findings"]])
            err = float(torch.maximum((lp - cl[:, 0]).abs(), (ln - cl[:, 1]).abs()).max())
            need(err < 1e-3 * max(1.0, scale),
                 f"{rec['case']}: zero-shot logits PyTorch vs t3d max |diff| {err:.2e} < {1e-3 * max(1.0, scale):.2e}")


def check_grads(a, b):
    ga, gb = torch.load(a), torch.load(b)
    need(sorted(ga) == sorted(gb), f"same parameters with gradients ({len(ga)} vs {len(gb)})")
    top, name = 0.0, ""
    # Tensors whose gradient is zero in exact arithmetic (a conv bias before BatchNorm, BERT's key
    # bias) hold rounding noise only: differences are measured against at least 1e-3 of the
    # largest gradient anywhere (measured: a downsample bias before BN at 1e-6 with 2e-6 of noise
    # between the runs, the largest gradient 16.5). A real error (a gradient not averaged, a
    # shard seeing the wrong samples) is a relative difference of order 1 on every tensor.
    floor = 1e-3 * max(float(g.abs().max()) for g in ga.values())
    for k in ga:
        if k not in gb:
            continue
        scale = max(float(ga[k].abs().max()), floor)
        d = float((ga[k] - gb[k]).abs().max()) / scale
        if not math.isnan(top) and not d <= top:  # a NaN gradient stays the worst
            top, name = d, k
    need(top < 1e-3, f"gradients agree: worst relative max |diff| {top:.2e} ({name}) < 1e-3")
    total = sum(float(v.abs().sum()) for v in ga.values())
    need(total > 0, f"gradients are not all zero (sum |g| = {total:.3g})")


def check_resume(csv_path, killed_at, interval):
    with open(csv_path, newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    need(steps == list(range(1, len(steps) + 1)), f"metrics.csv holds each step once, in order ({steps[:3]}..{steps[-3:]})")
    log = open(csv_path.rsplit("/", 1)[0] + "/resume.log").read()
    resumed = [int(line.split()[-1]) for line in log.splitlines() if line.startswith("resumed from")]
    need(len(resumed) == 1, f"the rerun resumed from a checkpoint ({resumed})")
    if resumed:
        need(killed_at - resumed[0] <= interval,
             f"lost {killed_at - resumed[0]} steps (killed after step {killed_at}, resumed at {resumed[0]}) <= {interval}")


def check_overfit(csv_path, batch, fraction):
    """CLIP on a few fixed pairs must fall well below ln(batch), its value for collapsed embeddings."""
    with open(csv_path, newline="") as f:
        clip = [float(r["clip"]) for r in csv.DictReader(f)]
    last = sum(clip[-3:]) / len(clip[-3:])
    limit = fraction * math.log(batch)
    need(last < limit, f"CLIP loss of the last 3 steps {last:.4f} < {fraction} * ln({batch}) = {limit:.4f} "
                       f"(first step {clip[0]:.4f}; ln(batch) means collapsed embeddings)")


def check_frozen(before, after):
    """Segmentation fine-tuning (--freeze-encoder) changes the decoder and nothing the zero-shot
    path reads: every other weight and buffer of the exported model (encoder, BatchNorm statistics,
    projections and their centring, text tower, logit scale) equals its value before."""
    import torch
    a = torch.load(before, map_location="cpu")["model"]
    b = torch.load(after, map_location="cpu")["model"]
    exported = [k for k in a if not k.startswith("tma.")]  # the TMA head is training-only
    seg = [k for k in exported if k.startswith("visual.seg.")]
    rest = [k for k in exported if k not in seg]
    changed = [k for k in rest if not torch.equal(a[k], b[k])]
    need(not changed, f"{len(rest)} tensors outside the decoder unchanged (changed: {changed[:5]})")
    moved = [k for k in seg if not torch.equal(a[k], b[k])]
    need(len(moved) > 0, f"the decoder trained ({len(moved)} of {len(seg)} decoder tensors changed)")


def check_model_file(ckpt, template):
    """train.model.load_model_file inverts the export: a checkpoint exported to a model file and
    loaded into a fresh model exports the same tensors bit for bit, and embeds volumes and reports
    as the checkpoint does (its centring folded into the biases: within float rounding)."""
    from train.export import export
    from train.model import exported_state, load_model_file
    cfg, vocab, _, _ = D.read_model_meta(template)
    torch.manual_seed(0)
    a = T3DModel(cfg)
    load_weights(a, torch.load(ckpt, map_location="cpu")["model"])
    torch.manual_seed(1)
    b = T3DModel(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.safetensors")
        export(a.eval(), template, path)
        load_model_file(b, path)
    ea, eb = exported_state(a), exported_state(b)
    same = [k for k in ea if torch.equal(ea[k], eb[k])]
    need(len(same) == len(ea), f"model file -> model -> export: {len(same)} of {len(ea)} tensors bit for bit")
    b.eval()
    x = torch.rand(2, 1, *cfg["preprocess"]["shape"])  # z, y, x
    tok = D.tokenizer_for(vocab, cfg["text"])
    ids, mask = D.tokenize(tok, ["No pleural effusion.", "Large right pleural effusion."], 32)
    with torch.no_grad():
        va, vb = a.encode_volume(x, segment=False)[0], b.encode_volume(x, segment=False)[0]
        ta, tb = a.encode_text(ids, mask)[0], b.encode_text(ids, mask)[0]
    err = max(float((va - vb).abs().max()), float((ta - tb).abs().max()))
    need(err < 1e-5, f"embeddings of the loaded model file equal the checkpoint's (max difference {err:.1e})")


def dice_ce_one_hot(logits, labels, classes, ce_weights=None):
    """train/losses.py dice_ce_loss written with F.cross_entropy, softmax and a one-hot volume
    (the formula it replaced; check_phase compares the two, values and gradients)."""
    import torch.nn.functional as F
    ce = F.cross_entropy(logits, labels, weight=ce_weights)
    p = logits.softmax(dim=1)
    onehot = F.one_hot(labels, classes).permute(0, 4, 1, 2, 3).to(p.dtype)
    dims = (2, 3, 4)
    inter = (p * onehot).sum(dims)
    denom = p.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + 1e-3) / (denom + 1e-3)  # [b, C]
    return ce + (1 - dice).mean()


def check_phase():
    import torch.nn.functional as F
    from train.losses import dice_ce_loss
    from train.model import phase_conv3d, use_phase_conv, PhaseConv3d, use_pointwise_conv, PointwiseConv3d
    g = torch.Generator().manual_seed(5)
    for shape, cin, cout, k in (((2, 1, 64, 64, 64), 1, 8, 7), ((1, 1, 17, 20, 9), 1, 4, 7),
                                ((2, 3, 11, 8, 13), 3, 5, 3), ((1, 2, 1, 2, 3), 2, 3, 5)):
        x = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
        w = torch.randn((cout, cin, k, k, k), generator=g, dtype=torch.float64, requires_grad=True)
        b = torch.randn(cout, generator=g, dtype=torch.float64, requires_grad=True)
        ref = F.conv3d(x, w, b, stride=2, padding=k // 2)
        out = phase_conv3d(x, w, b, k // 2)
        gy = torch.randn(ref.shape, generator=g, dtype=torch.float64)
        grads_ref = torch.autograd.grad(ref, (x, w, b), gy)
        grads = torch.autograd.grad(out, (x, w, b), gy)
        err = worst(float((out - ref).abs().max()), *[float((p - q).abs().max()) for p, q in zip(grads, grads_ref)])
        need(out.shape == ref.shape and err < 1e-9,
             f"phase conv {tuple(shape)} k{k}: shape {tuple(out.shape)} = {tuple(ref.shape)}, max error {err:.2e}")
    conv = use_phase_conv(torch.nn.Conv3d(1, 8, 7, stride=2, padding=3))
    keep = use_phase_conv(torch.nn.Conv3d(1, 8, 3, stride=1, padding=1))
    need(type(conv) is PhaseConv3d and type(keep) is torch.nn.Conv3d,
         "use_phase_conv takes the stride-2 stem and leaves a stride-1 convolution")
    ref = torch.nn.Conv3d(6, 9, 1).double()
    pw = use_pointwise_conv(torch.nn.Conv3d(6, 9, 1).double())
    pw.load_state_dict(ref.state_dict())
    x = torch.randn((2, 6, 5, 7, 3), generator=g, dtype=torch.float64, requires_grad=True)
    a, b = ref(x), pw(x)
    gy = torch.randn(a.shape, generator=g, dtype=torch.float64)
    ga = torch.autograd.grad(a, [x] + list(ref.parameters()), gy)
    gb = torch.autograd.grad(b, [x] + list(pw.parameters()), gy)
    err = worst(float((a - b).abs().max()), *[float((p - q).abs().max()) for p, q in zip(ga, gb)])
    need(type(pw) is PointwiseConv3d and err < 1e-12, f"pointwise head conv = nn.Conv3d (max error {err:.2e})")
    # the Dice + cross-entropy loss against its one-hot reference, on logits laid out as the
    # pointwise head leaves them (channels innermost) and as a plain tensor
    for channels_last in (True, False):
        z = torch.randn((2, 9, 5, 6, 4), generator=g, dtype=torch.float64) * 3
        if channels_last:
            z = z.movedim(1, -1).contiguous().movedim(-1, 1)
        z.requires_grad_()
        lab = torch.randint(0, 9, (2, 5, 6, 4), generator=g)
        lab[1][lab[1] == 3] = 4  # a class absent from one volume
        for cw in (None, torch.tensor([1, 1, 1, 1, 1, 1, 1, 1, 8.0], dtype=torch.float64)):
            a, b = dice_ce_loss(z, lab, 9, cw), dice_ce_one_hot(z, lab, 9, cw)
            ga, gb = torch.autograd.grad(a, z), torch.autograd.grad(b, z)
            err = worst(float((a - b).abs()), float((ga[0] - gb[0]).abs().max()))
            need(err < 1e-12, f"Dice + CE loss = its one-hot reference (channels last {channels_last}, class weights "
                              f"{'none' if cw is None else 'lesion 8'}, loss {float(a):.6f}, max error {err:.2e})")


def check_views():
    """The TMA views' crops, batched (the GPU path) and one sample at a time (the CPU path),
    against F.interpolate on each crop in float64: within 1e-6 of the largest value for the
    batched one (measured 1.5-1.8e-7), 1e-5 for PyTorch's float32 resize (measured 2e-6 on odd crop
    sizes); make_views's input view the jittered input bit for bit; and over 500 samples the crops
    inside the volume, of the sizes their ranges allow, the jitter within its range."""
    import torch.nn.functional as F
    from train.data import make_views, view_params, resize_crops_batched, resize_crops_each, GLOBAL_CROP, LOCAL_CROP
    g = torch.Generator().manual_seed(11)
    for shape, batch, n_local in (((40, 33, 37), 3, 4), ((64, 64, 64), 8, 4), ((20, 70, 9), 2, 2)):
        x = torch.randn((batch, 1) + shape, generator=g) * 300 - 200
        idx = [int(i) for i in torch.randint(0, 10000, (batch,), generator=g)]
        ab, starts, sizes = view_params(7, 123, idx, n_local, shape)
        half = [max(s // 2, 32) for s in shape]
        worst_err = [0.0, 0.0]
        for c in range(len(starts)):
            out = list(shape) if c == 0 else half
            ref = torch.cat([F.interpolate(x[i:i + 1].double()[:, :, z:z + d, y:y + h, w:w + n], size=out,
                                           mode="trilinear", align_corners=False)
                             for i, ((z, y, w), (d, h, n)) in enumerate(zip(starts[c].tolist(), sizes[c].tolist()))])
            for k, f in enumerate((resize_crops_batched, resize_crops_each)):
                worst_err[k] = worst(worst_err[k], float((f(x, starts[c], sizes[c], out).double() - ref).abs().max() / ref.abs().max()))
        views = make_views(x, 7, 123, idx, n_local=n_local)
        plain = x * ab[0][:, 0].view(-1, 1, 1, 1, 1) + ab[0][:, 1].view(-1, 1, 1, 1, 1)
        need(len(views) == 2 + n_local and worst_err[0] < 1e-6 and worst_err[1] < 1e-5 and torch.equal(views[0], plain),
             f"views of {shape} x {batch}, {n_local} local: {len(views)} views, crops' max error batched "
             f"{worst_err[0]:.1e}, one at a time {worst_err[1]:.1e} of the largest value, input view the jittered input "
             f"{torch.equal(views[0], plain)}")
    shape = (40, 33, 37)
    dims = torch.tensor(shape)
    ab, starts, sizes = view_params(3, 9, list(range(500)), 4, shape)
    inside = all(bool((s0 >= 0).all() and (s0 + s1 <= dims).all()) for s0, s1 in zip(starts, sizes))
    fr = [(s1.double() / dims).flatten() for s1 in sizes]
    ok = all(float(f.min()) >= r[0] - 0.5 / 33 - 1e-9 and float(f.max()) <= r[1] + 0.5 / 33 + 1e-9
             for f, r in zip(fr, [GLOBAL_CROP] + [LOCAL_CROP] * 4))
    jit = all(float((v[:, 0] - 1).abs().max()) <= 0.1 and float(v[:, 1].abs().max()) <= 0.05 for v in ab)
    need(inside and ok and jit, f"500 samples' crops inside the volume ({inside}), side fractions within "
                                f"their ranges ({ok}), jitter within 1 +- 0.1, +- 0.05 ({jit})")
    need(len(make_views(torch.zeros((2, 1, 8, 8, 8)), 1, 1, [0, 1], n_local=0)) == 1, "CLIP alone: one view")
    # --input-jitter 0: the input view is the input itself; the crops' jitter and crops are as before
    x = torch.rand((3, 1) + shape, generator=g)
    ab0 = view_params(5, 8, [4, 5, 6], 4, shape, 0.1, input_jitter=0.0)[0]
    ref_views = make_views(x, 5, 8, [4, 5, 6], n_local=4)
    views = make_views(x, 5, 8, [4, 5, 6], n_local=4, input_jitter=0.0)
    same_rest = all(torch.equal(a, b) for a, b in zip(views[1:], ref_views[1:])) and \
        all(torch.equal(a, b) for a, b in zip(ab0[1:], view_params(5, 8, [4, 5, 6], 4, shape)[0][1:]))
    need(torch.equal(views[0], x) and same_rest and not torch.equal(ref_views[0], x),
         f"--input-jitter 0: input view unchanged ({torch.equal(views[0], x)}), crop views as with the default "
         f"({same_rest})")


def check_histogram():
    """train/probe.py's histogram towers against a per-voxel loop over HISTOGRAM_EDGES (bin i holds
    edges[i] <= HU < edges[i + 1], the top bin HU = hu_max too), whole volume and per label; and
    --jitter's inputs are the trainer's input view at step 0."""
    import bisect
    from types import SimpleNamespace
    from train.probe import HISTOGRAM_EDGES, histogram_features, jitter_inputs
    g = torch.Generator().manual_seed(3)
    hu = torch.rand((3, 1, 6, 5, 7), generator=g) * 2300 - 1150  # beyond the window on both sides
    hu[0, 0, 0, 0, :3] = torch.tensor([-1000.0, 1000.0, 0.0])
    cs = SimpleNamespace(x=((hu.clamp(-1000, 1000) + 1000) / 2000).float(),
                         labels=torch.randint(0, 4, (3, 6, 5, 7), generator=g))
    bins = len(HISTOGRAM_EDGES) - 1
    ref = torch.zeros(3, 4 * bins)
    for i in range(3):
        h = (cs.x[i].flatten() * 2000 - 1000).clamp(-1000, 1000).tolist()
        for v, lab in zip(h, cs.labels[i].flatten().tolist()):
            ref[i, lab * bins + min(bisect.bisect_right(HISTOGRAM_EDGES, v) - 1, bins - 1)] += 1
    per = histogram_features(cs, -1000.0, 1000.0, per_label=4).expm1().round()
    whole = histogram_features(cs, -1000.0, 1000.0).expm1().round()
    ok_whole = torch.equal(whole, ref.view(3, 4, bins).sum(1)) and bool((whole.sum(1) == 210).all())
    need(torch.equal(per, ref) and ok_whole, f"histogram tower: per-label counts equal the loop ({torch.equal(per, ref)}), "
                                             f"whole-volume counts their sum, 210 voxels a case ({ok_whole})")
    x0 = cs.x.clone()
    jitter_inputs(cs, 0.1)
    ab = D.view_params(1, 0, [0, 1, 2], 0, [6, 5, 7], 0.1)[0][0]
    want = x0 * ab[:, 0].view(-1, 1, 1, 1, 1) + ab[:, 1].view(-1, 1, 1, 1, 1)
    need(torch.equal(cs.x, want) and D.make_views(x0, 1, 0, [0, 1, 2], n_local=0)[0].equal(want),
         "--jitter: the probe's inputs are the trainer's input view at step 0")


def check_erosion():
    """erode_classes ("class_histogram_erosion") against a loop over the (2r+1)^3 cube, clipped to the
    grid, and against one max_pool3d of the whole cube; and projection_histograms puts the whole
    classes' histograms first, the eroded ones after."""
    from t3d_reference import class_histograms, erode_classes, projection_histograms
    g = torch.Generator().manual_seed(5)
    p = torch.rand((2, 3, 6, 5, 7), generator=g)
    for r in (1, 2):
        q = erode_classes(p, r)
        ref = torch.empty_like(p)
        for z in range(6):
            for y in range(5):
                for x in range(7):
                    ref[:, :, z, y, x] = p[:, :, max(0, z - r):z + r + 1, max(0, y - r):y + r + 1,
                                           max(0, x - r):x + r + 1].amin(dim=(2, 3, 4))
        cube = -F.max_pool3d(-p, 2 * r + 1, stride=1, padding=r)
        need(torch.equal(q, ref) and torch.equal(q, cube), f"erosion r={r}: equals the loop over the cube "
                                                           f"({torch.equal(q, ref)}) and one max_pool3d ({torch.equal(q, cube)})")
    x = torch.rand((2, 1, 6, 5, 7), generator=g)
    edges = [-1000.0, -500.0, 0.0, 1000.0]
    h = projection_histograms(x, p, (edges, -1000.0, 1000.0, 1))
    want = torch.cat([class_histograms(x, p, edges, -1000.0, 1000.0),
                      class_histograms(x, erode_classes(p, 1), edges, -1000.0, 1000.0)], dim=1)
    need(torch.equal(h, want) and torch.equal(projection_histograms(x, p, (edges, -1000.0, 1000.0, 0)), want[:, :9]),
         "projection_histograms: whole classes' histograms, then the eroded ones (none without erosion)")


def main():
    cmd = sys.argv[1]
    if cmd == "inputs":
        check_inputs(*sys.argv[2:6])
    elif cmd == "grads":
        check_grads(*sys.argv[2:4])
    elif cmd == "resume":
        check_resume(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "frozen":
        check_frozen(sys.argv[2], sys.argv[3])
    elif cmd == "modelfile":
        check_model_file(sys.argv[2], sys.argv[3])
    elif cmd == "phase":
        check_phase()
    elif cmd == "views":
        check_views()
        check_histogram()
        check_erosion()
    elif cmd == "overfit":
        check_overfit(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(f"unknown check {cmd}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
