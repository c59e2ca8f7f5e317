"""One batched training stack: K members trained together, each as if it trained alone.

API (the only way the run claims train models):

- ``Stack``: K members' parameters in one (K, n) buffer; each named parameter ``stack.p(name)`` is a
  (K, *shape) view of it and its gradient a view of one (K, n) gradient buffer, so the optimiser,
  clipping and norms are a handful of whole-buffer operations. ``keep(idx)`` drops members,
  ``load(flat)`` restores saved weights. Adapters (``verifiers.lab.stacks``), each mapping inputs
  with a leading K axis to logits: ``MLPStack`` (MLP LM over the last k tokens, mixed widths,
  zero padding that stays zero), ``NGramStack`` (the same read at one position: (K, B, k)
  contexts), ``GPTStack`` (the lab GPT: pre/post-LN, parallel blocks, MHA/GQA/MQA,
  learned/RoPE/ALiBi/no positions), ``AdderStack`` (two-operand classifier), ``ClassifierStack``
  (MLP on features) and ``ModuleStack`` (any one nn.Module, e.g. an LSTM, as K = 1).
- ``BatchedAdamW(stack, betas, eps, kind)``: AdamW (Loshchilov & Hutter 2017) as torch.optim.AdamW
  writes it; ``step(lr, weight_decay)`` takes a (K,) learning rate and weight decay per member;
  ``kind="sgd"`` is SGD with heavy-ball momentum ``betas[0]``.
- ``member_ce(logits, targets)`` -> (K,) mean cross-entropy (ids with -1 ignored, or target
  distributions); ``z_loss(coef)`` -> an auxiliary term (PaLM §5).
- ``train(stack, opt, batch, lr, steps, weight_decay, clip, aux, on_step, on_done, loss)`` ->
  ``Trace``: one loop for every claim. ``batch(step, active)`` -> (inputs, targets) of the active
  members; ``lr(step)`` -> (K,); ``steps`` per member (a member leaves the batch when its run
  ends, after ``on_done``); ``on_step`` may stop the run; a member whose loss turns non-finite is
  frozen and marked diverged.
- ``lr_table(peaks, steps, schedule, warmup, min_ratio)`` -> ``lr`` from per-member peaks/lengths.
- Around it: ``feeds`` (Markov batches, exact evaluation), ``grid`` (size × steps × seed grids
  with exact metrics), ``pairs`` (i.i.d. context pairs, population loss), ``text`` (the standard
  library's source as bytes), ``tuning`` (tuned arms as extra members; replication and scale).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .train import lr_at

__all__ = ["Stack", "BatchedAdamW", "member_ce", "z_loss", "train", "Trace", "lr_table"]

# Parameter views of one buffer are strided; their gradients still accumulate in place.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout")


class Stack:
    """K members' parameters in one (K, n) buffer with one (K, n) gradient buffer."""

    def __init__(self, members: Sequence[dict[str, torch.Tensor]], device: str | torch.device):
        first = members[0]
        self.shapes = {name: tuple(t.shape) for name, t in first.items()}
        self.offsets, n = {}, 0
        for name, shape in self.shapes.items():
            self.offsets[name] = n
            n += math.prod(shape)
        flat = torch.stack([torch.cat([m[name].reshape(-1) for name in self.shapes]) for m in members])
        self._bind(flat.to(device))

    def _bind(self, flat: torch.Tensor) -> None:
        """Make one leaf per named parameter, a view of `flat`, with a view of the grad buffer."""
        self.flat, self.grad = flat.detach(), torch.zeros_like(flat)
        self.views: dict[str, torch.Tensor] = {}
        for name, shape in self.shapes.items():
            a, size = self.offsets[name], math.prod(shape)
            leaf = self.flat[:, a:a + size].view(-1, *shape).requires_grad_()
            leaf.grad = self.grad[:, a:a + size].view(-1, *shape)
            self.views[name] = leaf

    @property
    def K(self) -> int:
        return self.flat.shape[0]

    def p(self, name: str) -> torch.Tensor:
        return self.views[name]

    def has(self, name: str) -> bool:
        return name in self.views

    def load(self, flat: torch.Tensor) -> None:
        """Set every member's parameters from a (K, n) copy of ``flat`` (gradients zeroed)."""
        self._bind(flat.clone())

    def keep(self, idx: Sequence[int]) -> None:
        """Keep only the members in `idx`, in that order."""
        self._bind(self.flat[list(idx)].clone())

    def sq_norm(self, names: Sequence[str] | None = None) -> torch.Tensor:
        """Squared L2 norm of each member's parameters (all, or the named ones) -> (K,)."""
        if names is None:
            return self.flat.pow(2).sum(1)
        return sum(self.views[n].detach().pow(2).flatten(1).sum(1) for n in names)


class BatchedAdamW:
    """AdamW with a learning rate and a decoupled weight decay per member (torch's update order)."""

    def __init__(self, stack: Stack, betas: tuple[float, float], eps: float = 1e-8,
                 kind: str = "adamw"):
        if kind not in ("adamw", "sgd"):
            raise ValueError(f"optimiser kind must be 'adamw' or 'sgd' (got {kind!r})")
        self.stack, self.betas, self.eps, self.kind, self.t = stack, betas, eps, kind, 0
        self.m, self.v = torch.zeros_like(stack.flat), torch.zeros_like(stack.flat)

    def keep(self, idx: Sequence[int]) -> None:
        """Keep the moments of members `idx` (call after ``stack.keep(idx)``)."""
        self.m, self.v = self.m[list(idx)], self.v[list(idx)]

    @torch.no_grad()
    def step(self, lr: torch.Tensor, weight_decay: torch.Tensor | None) -> None:
        """lr, weight_decay: (K,) per member (None: no decay); a member with lr 0 does not move."""
        p, g, b1, b2 = self.stack.flat, self.stack.grad, *self.betas
        r = lr.to(p).view(-1, 1)
        self.t += 1
        if self.kind == "sgd":  # heavy-ball momentum (torch.optim.SGD's form)
            self.m.mul_(b1).add_(g)
            p.sub_(r * self.m)
            return
        if weight_decay is not None:
            p.mul_(1 - r * weight_decay.to(p).view(-1, 1))
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = self.v.sqrt().div_(math.sqrt(1 - b2 ** self.t)).add_(self.eps)
        p.sub_(self.m.mul(r / (1 - b1 ** self.t)).div_(denom))  # in place: torch's order, no copies


def member_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each member -> (K,).

    targets: ids (K, ...) with -1 where a position does not count, or distributions (K, ..., V)
    where an all-zero row does not count (training on the true next-token law: no label noise).
    """
    K, V = logits.shape[0], logits.shape[-1]
    if targets.is_floating_point():
        ce = -(targets * torch.log_softmax(logits, dim=-1)).sum(-1).reshape(K, -1)
        keep = (targets.sum(-1) > 0).reshape(K, -1).to(ce.dtype)
        return (ce * keep).sum(1) / keep.sum(1).clamp(min=1)
    ce = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1,
                         reduction="none").view(K, -1)
    keep = (targets >= 0).reshape(K, -1).to(ce.dtype)
    return ce.sum(1) / keep.sum(1).clamp(min=1)


def z_loss(coef: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """coef · mean log²Z per member (PaLM §5 uses 1e-4)."""
    return lambda logits: coef * torch.logsumexp(logits, dim=-1).pow(2).flatten(1).mean(1)


@dataclass
class Trace:
    """Per-step (steps, K) arrays; NaN where a member had already left the batch."""

    loss: list[np.ndarray] = field(default_factory=list)       # training CE (no auxiliary term)
    grad_norm: list[np.ndarray] = field(default_factory=list)  # before clipping
    lr: list[np.ndarray] = field(default_factory=list)
    diverged: np.ndarray | None = None                         # (K,) bool

    def array(self, name: str) -> np.ndarray:
        return np.stack(getattr(self, name))


def lr_table(peaks: Sequence[float], steps: Sequence[int], schedule: str, warmup: int = 0,
             min_ratio: float = 0.0) -> Callable[[int], torch.Tensor]:
    """lr(step) -> (K,): member i follows ``lr_at`` over its own run of steps[i]."""
    table = torch.tensor([[lr_at(s, n, peak, schedule, warmup, None, min_ratio) if s < n else 0.0
                           for peak, n in zip(peaks, steps)] for s in range(max(steps))])
    rows = table.unbind(0)
    return rows.__getitem__


Batch = Callable[[int, list[int]], tuple[torch.Tensor, torch.Tensor]]


def _step(stack, opt, inp, tgt, lr, wd, clip, aux, alive, loss):
    """One update of the active members; returns (logits, CE, grad norm), all detached."""
    logits = stack(inp)
    ce = loss(logits, tgt)
    total = ce + aux(logits) if aux else ce
    alive &= torch.isfinite(total.detach())
    stack.grad.zero_()
    torch.where(alive, total, 0.0).sum().backward()
    gn = stack.grad.norm(dim=1)
    scale = alive.to(gn.dtype)
    if clip:
        scale = scale * (clip / (gn + 1e-6)).clamp(max=1.0)
    stack.grad.mul_(scale[:, None]).nan_to_num_(0.0)
    opt.step(lr * alive, wd)
    return logits.detach(), ce.detach(), gn


def _drop(stack: Stack, opt: BatchedAdamW, active: list[int], done: list[int]) -> list[int]:
    """Remove the members at positions `done` of `active` from the batch; the new active list."""
    keep = [j for j in range(len(active)) if j not in done]
    stack.keep(keep)
    opt.keep(keep)
    return [active[j] for j in keep]


def _trace(K: int, rows: list[tuple]) -> Trace:
    """(active, CE, grad norm, lr) per step -> Trace: one conversion per run of steps that share
    an active list, not three numpy rows a step."""
    tr, n = Trace(), len(rows)
    for f, name in enumerate(("loss", "grad_norm", "lr"), start=1):
        out, a = np.full((n, K), np.nan), 0
        while a < n:
            act, b = rows[a][0], a
            while b < n and rows[b][0] is act:
                b += 1
            out[a:b, act] = torch.stack([r[f] for r in rows[a:b]]).cpu().numpy()
            a = b
        setattr(tr, name, list(out))
    return tr


def train(stack: Stack, opt: BatchedAdamW, batch: Batch, lr: Callable[[int], torch.Tensor],
          steps: Sequence[int], weight_decay: Sequence[float], clip: float | None = None,
          aux: Callable[[torch.Tensor], torch.Tensor] | None = None,
          on_step: Callable[[int, torch.Tensor, list[int]], bool | None] | None = None,
          on_done: Callable[[list[int], list[int]], None] | None = None,
          loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = member_ce) -> Trace:
    """Train every member for its own number of steps; `batch(step, active)` -> (inputs, targets)
    for the active members. `on_step(step, logits, active)` after each update may return True to
    stop every member; `on_done(done, active)` just before members `done` (positions in `active`)
    leave the batch (at the end of their run, or at a stop). `loss(logits, targets)` -> (K,)."""
    K, dev = stack.K, stack.flat.device
    wd_all = torch.tensor(list(weight_decay), dtype=stack.flat.dtype, device=dev) \
        if any(weight_decay) else None  # no decay: p·1 is p, so skip it
    active, alive = list(range(K)), torch.ones(K, dtype=torch.bool, device=dev)
    idx, wd, rows = None, wd_all, []  # idx None while every member is active: no gathers
    for step in range(max(steps)):
        inp, tgt = batch(step, active)
        lrs, live = lr(step).to(dev), alive
        if idx is not None:
            lrs, live = lrs[idx], alive[idx]
        logits, ce, gn = _step(stack, opt, inp, tgt, lrs, wd, clip, aux, live, loss)
        if idx is not None:
            alive[idx] = live
        rows.append((active, ce, gn, lrs.clone() if idx is None else lrs))
        stop = bool(on_step(step, logits, active)) if on_step else False
        done = list(range(len(active))) if stop else \
            [j for j, i in enumerate(active) if steps[i] == step + 1]
        if done and on_done:
            on_done(done, active)
        if stop or len(done) == len(active):
            break
        if done:
            active = _drop(stack, opt, active, done)
            idx = torch.tensor(active, device=dev)
            wd = wd_all[idx] if wd_all is not None else None
    tr = _trace(K, rows)
    tr.diverged = ~alive.cpu().numpy()
    return tr
