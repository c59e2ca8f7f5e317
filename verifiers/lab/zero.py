"""ZeRO stages 0–2 by hand on torch.distributed, in mixed precision, so that each stage's memory
and traffic are what a real step holds and issues (Rajbhandari et al. 2019, §5.1–5.2 and §7.2.1).

Every parameter tensor is split, flat, into K equal chunks; rank r owns chunk r. The model's
parameters and gradients are 16-bit (or fp32); the optimizer keeps, for what the rank owns, an
fp32 master copy (only when the parameters are 16-bit) and Adam's two fp32 moments:
- stage 0 owns everything; gradients arrive averaged (DDP's all-reduce does that);
- stage 1 (P_os) keeps full gradients, reduce-scatters them in ``step`` and all-gathers the
  updated parameters;
- stage 2 (P_os+g) reduce-scatters each gradient as soon as backward has produced it and frees
  the full one, so at most one layer's full gradient lives at a time.
Stage 3 is FSDP (``torch.distributed.fsdp.fully_shard``), not this module.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["ZeroAdam"]


class ZeroAdam(torch.optim.Optimizer):
    """Adam over this rank's shard of every parameter, with an fp32 master for 16-bit params."""

    def __init__(self, params, lr: float, stage: int, rank: int, world: int):
        super().__init__(list(params), dict(lr=lr, betas=(0.9, 0.999), eps=1e-8))
        self.stage, self.rank, self.world = stage, rank, world
        self.grad_shards: dict[torch.Tensor, torch.Tensor] = {}  # stage 2: the owned gradient
        self.t = 0
        for p in self._params():
            shard = self._mine(p.detach()).float()
            st = self.state[p]
            if p.dtype != torch.float32:
                st["master"] = shard.clone()
            st["exp_avg"], st["exp_avg_sq"] = torch.zeros_like(shard), torch.zeros_like(shard)
            if stage == 2:
                p.register_post_accumulate_grad_hook(self._scatter_now)

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def _mine(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's flat chunk of t (all of it at stage 0)."""
        if self.stage == 0:
            return t.reshape(-1)
        return t.reshape(-1).chunk(self.world)[self.rank]

    def _scatter(self, g: torch.Tensor) -> torch.Tensor:
        """Sum g over ranks, keep this rank's chunk, average it."""
        out = torch.empty(g.numel() // self.world, dtype=g.dtype, device=g.device)
        dist.reduce_scatter_tensor(out, g.reshape(-1).contiguous())
        return out.div_(self.world)

    def _scatter_now(self, p: torch.Tensor) -> None:
        self.grad_shards[p] = self._scatter(p.grad)
        p.grad = None  # the full gradient is gone before the next layer's is made

    def _grad(self, p: torch.Tensor) -> torch.Tensor | None:
        if self.stage == 2:
            return self.grad_shards.pop(p, None)
        if p.grad is None:
            return None
        return self._scatter(p.grad) if self.stage == 1 else p.grad.reshape(-1)

    @torch.no_grad()
    def step(self, closure=None):
        self.t += 1
        lr, (b1, b2) = self.param_groups[0]["lr"], self.defaults["betas"]
        for p in self._params():
            g = self._grad(p)
            if g is None:
                continue
            st = self.state[p]
            w = st.get("master", self._mine(p))
            m, v = st["exp_avg"], st["exp_avg_sq"]
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.defaults["eps"])
            w.addcdiv_(m, denom, value=-lr / (1 - b1 ** self.t))
            self._publish(p, w)

    def _publish(self, p: torch.Tensor, w: torch.Tensor) -> None:
        """Write the updated owned values back into the model and share them with all ranks."""
        if self.stage == 0:
            if w.data_ptr() != p.data_ptr():
                p.copy_(w.view_as(p))
            return
        dist.all_gather_into_tensor(p.reshape(-1), w.to(p.dtype, copy=True))  # w may alias p

    def grad_bytes(self) -> int:
        return sum(g.numel() * g.element_size() for g in self.grad_shards.values())
