"""Model adapters of the batched stack: each maps (K, B, T) token ids to (K, B, T, V) logits.

Member i starts from exactly the weights its single-model twin has after
``torch.manual_seed(seeds[i])`` (``MLPLM``, the lab ``GPT``, or the adder's embedding and two
linears), so K members trained together are K separate runs computed at once.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .batched import Stack
from .gpt import GPT, GPTConfig, _alibi_bias, _rope
from .train import MLPLM

__all__ = ["MLPStack", "NGramStack", "GPTStack", "AdderStack", "ClassifierStack", "ModuleStack",
           "mlp_params"]


def mlp_params(V: int, k: int, d_emb: int, h: int, n_layers: int) -> int:
    """Non-embedding parameters of ``MLPLM(V, k, d_emb, h, n_layers)``: weights and biases."""
    return (k * d_emb + 1) * h + (n_layers - 1) * (h + 1) * h + (h + 1) * V


def _padded_mlp(model: MLPLM, H: int) -> dict[str, torch.Tensor]:
    """MLPLM weights as (in, out) matrices, hidden units zero-padded to width H (they stay 0)."""
    lins = [m for m in model.net if isinstance(m, nn.Linear)]
    out = {"emb": model.emb.weight.detach()}
    for j, lin in enumerate(lins):
        w = lin.weight.detach().T
        d_in = w.shape[0] if j == 0 else H
        d_out = w.shape[1] if j == len(lins) - 1 else H
        W, b = torch.zeros(d_in, d_out), torch.zeros(1, d_out)
        W[: w.shape[0], : w.shape[1]], b[0, : w.shape[1]] = w, lin.bias.detach()
        out[f"W{j}"], out[f"b{j}"] = W, b
    return out


class MLPStack(Stack):
    """K MLP language models over the last k tokens; member widths may differ."""

    def __init__(self, V: int, k: int, d_emb: int, widths: Sequence[int], n_layers: int,
                 seeds: Sequence[int], device: str | torch.device):
        models = []
        for h, s in zip(widths, seeds, strict=True):
            torch.manual_seed(int(s))
            models.append(MLPLM(V, k, d_emb, h, n_layers))
        super().__init__([_padded_mlp(m, max(widths)) for m in models], device)
        self.V, self.k, self.d_emb, self.n_layers = V, k, d_emb, n_layers
        self.widths = list(widths)

    def non_embedding_params(self) -> list[int]:
        """N of each member (Kaplan et al. 2020 §2.1: every weight but the token embedding)."""
        return [mlp_params(self.V, self.k, self.d_emb, h, self.n_layers) for h in self.widths]

    def keep(self, idx: Sequence[int]) -> None:
        super().keep(idx)
        self.widths = [self.widths[i] for i in idx]

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Input of the output layer: (K, B, T) -> (K, B*T, H); context before t=0 is zero."""
        K, B, T = idx.shape
        e = self.p("emb")[torch.arange(K, device=idx.device)[:, None, None], idx]  # (K, B, T, d)
        e = F.pad(e, (0, 0, self.k - 1, 0))
        x = torch.cat([e[:, :, j: j + T] for j in range(self.k)], dim=-1).reshape(K, B * T, -1)
        for j in range(self.n_layers):
            x = F.gelu(torch.baddbmm(self.p(f"b{j}"), x, self.p(f"W{j}")))
        return x

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        K, B, T = idx.shape
        j = self.n_layers
        out = torch.baddbmm(self.p(f"b{j}"), self.hidden(idx), self.p(f"W{j}"))
        return out.view(K, B, T, -1)


class AdderStack(Stack):
    """K classifiers of (a, b) pairs: embed each operand, concatenate, GELU MLP, p logits."""

    def __init__(self, p: int, d: int, h: int, seeds: Sequence[int], device: str | torch.device):
        members = []
        for s in seeds:
            torch.manual_seed(int(s))
            E, l1, l2 = nn.Embedding(p, d), nn.Linear(2 * d, h), nn.Linear(h, p)
            members.append({"emb": E.weight.detach(), "W0": l1.weight.detach().T,
                            "b0": l1.bias.detach()[None], "W1": l2.weight.detach().T,
                            "b1": l2.bias.detach()[None]})
        super().__init__(members, device)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """X: (K, n, 2) operand ids -> logits (K, n, p)."""
        K = X.shape[0]
        e = self.p("emb")[torch.arange(K, device=X.device)[:, None, None], X].flatten(2)
        h = F.gelu(torch.baddbmm(self.p("b0"), e, self.p("W0")))
        return torch.baddbmm(self.p("b1"), h, self.p("W1"))


class GPTStack(Stack):
    """K lab GPTs of one config; ``p(name)`` has shape (K, *shape of the GPT's parameter)."""

    def __init__(self, cfg: GPTConfig, seeds: Sequence[int], device: str | torch.device):
        nets = []
        for s in seeds:
            torch.manual_seed(int(s))
            nets.append({n: p.detach() for n, p in GPT(cfg).named_parameters()})  # tied head once
        super().__init__(nets, device)
        self.cfg = cfg

    def non_embedding_params(self) -> int:
        """Kaplan et al. 2020 §2.1: N excludes token and position embeddings (per member)."""
        return sum(self.views[n][0].numel() for n in self.views if n not in ("wte.weight", "wpe.weight"))

    def _lin(self, x: torch.Tensor, name: str) -> torch.Tensor:
        W = self.p(name + ".weight")  # (K, out, in)
        K, B, T, d = x.shape
        h = x.reshape(K, B * T, d)
        if self.has(name + ".bias"):
            y = torch.baddbmm(self.p(name + ".bias").unsqueeze(1), h, W.transpose(1, 2))
        else:
            y = torch.bmm(h, W.transpose(1, 2))
        return y.view(K, B, T, -1)

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        y = F.layer_norm(x, x.shape[-1:], eps=1e-5) * self.p(name + ".weight")[:, None, None]
        return y + self.p(name + ".bias")[:, None, None] if self.has(name + ".bias") else y

    def _attn(self, x: torch.Tensor, pre: str) -> torch.Tensor:
        cfg = self.cfg
        K, B, T, C = x.shape
        h, g = cfg.n_head, cfg.kv_heads
        hs = C // h
        q = self._lin(x, pre + "q").view(K, B, T, h, hs).permute(0, 1, 3, 2, 4).reshape(K * B, h, T, hs)
        kv = self._lin(x, pre + "kv").view(K, B, T, 2, g, hs).permute(3, 0, 1, 4, 2, 5)
        k, v = (t.reshape(K * B, g, T, hs) for t in kv)  # (K·B, g, T, hs)
        if cfg.pos == "rope":
            q, k = _rope(q), _rope(k)
        if g != h:  # GQA/MQA: each K/V head serves h/g query heads
            k, v = k.repeat_interleave(h // g, dim=1), v.repeat_interleave(h // g, dim=1)
        if cfg.pos == "alibi":
            mask = torch.full((T, T), float("-inf"), device=x.device).triu(1)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=_alibi_bias(h, T, x.device) + mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.view(K, B, h, T, hs).transpose(2, 3).reshape(K, B, T, C)
        return self._lin(y, pre + "proj")

    def _block(self, x: torch.Tensor, i: int) -> torch.Tensor:
        b = f"blocks.{i}."
        mlp = lambda z: self._lin(F.gelu(self._lin(z, b + "mlp.fc")), b + "mlp.proj")
        if self.cfg.parallel:  # PaLM §2: x + Attn(LN(x)) + MLP(LN(x))
            hn = self._ln(x, b + "ln1")
            return x + self._attn(hn, b + "attn.") + mlp(hn)
        if self.cfg.norm == "pre":  # Xiong et al. 2020, Fig. 1(b)
            x = x + self._attn(self._ln(x, b + "ln1"), b + "attn.")
            return x + mlp(self._ln(x, b + "ln2"))
        x = self._ln(x + self._attn(x, b + "attn."), b + "ln1")  # Vaswani et al. 2017
        return self._ln(x + mlp(x), b + "ln2")

    def __call__(self, idx: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        """idx (K, B, T) -> logits (K, B, T, V); `trace` collects each block's output RMS (K,)."""
        K, B, T = idx.shape
        x = self.p("wte.weight")[torch.arange(K, device=idx.device)[:, None, None], idx]
        if self.cfg.pos == "learned":
            x = x + self.p("wpe.weight")[:, None, :T]
        for i in range(self.cfg.n_layer):
            x = self._block(x, i)
            if trace is not None:
                trace.append(x.detach().pow(2).mean(dim=(1, 2, 3)).sqrt())
        if self.has("ln_f.weight"):
            x = self._ln(x, "ln_f")
        W = self.p("wte.weight" if self.cfg.tie_embeddings else "head.weight")  # (K, V, C)
        return torch.bmm(x.reshape(K, B * T, -1), W.transpose(1, 2)).view(K, B, T, -1)


class ModuleStack(Stack):
    """Any one ``nn.Module`` as a K = 1 stack: its parameters become views of the stack's buffer
    (and their gradients views of its gradient buffer), so the batched AdamW and the one training
    loop train models with no batched adapter (an LSTM). Tied weights stay tied. Calling it runs
    the module on idx[0]."""

    def __init__(self, module: nn.Module, device: str | torch.device):
        self.module = module.to(device)
        first: dict[int, str] = {}
        self.owners: dict[str, list[tuple[nn.Module, str]]] = {}
        for name, p in module.named_parameters(remove_duplicate=False):
            key = first.setdefault(id(p), name)
            owner, _, attr = name.rpartition(".")
            self.owners.setdefault(key, []).append(
                (module.get_submodule(owner) if owner else module, attr))
        super().__init__([{n: p.detach() for n, p in module.named_parameters()}], device)

    def _bind(self, flat: torch.Tensor) -> None:
        super()._bind(flat)
        for name, leaf in self.views.items():
            param = nn.Parameter(leaf.detach()[0])  # shares the buffer's memory
            param.grad = leaf.grad[0]
            for mod, attr in self.owners[name]:
                setattr(mod, attr, param)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.module(idx[0])[None]


class NGramStack(MLPStack):
    """K MLP language models read at one position: (K, B, k) contexts -> (K, B, V) logits of the
    next token (what ``MLPStack`` predicts at a position with a full context)."""

    def __call__(self, ctx: torch.Tensor) -> torch.Tensor:
        K, B, k = ctx.shape
        x = self.p("emb")[torch.arange(K, device=ctx.device)[:, None, None], ctx].reshape(K, B, -1)
        for j in range(self.n_layers):
            x = F.gelu(torch.baddbmm(self.p(f"b{j}"), x, self.p(f"W{j}")))
        return torch.baddbmm(self.p(f"b{self.n_layers}"), x, self.p(f"W{self.n_layers}"))


class ClassifierStack(Stack):
    """K GELU MLPs on feature vectors, layer sizes `dims`, each initialised as torch's nn.Linear
    (U(±1/√fan_in)) under its seed: (K, n, dims[0]) -> (K, n, dims[-1])."""

    def __init__(self, dims: Sequence[int], seeds: Sequence[int], device: str | torch.device):
        members = []
        for s in seeds:
            torch.manual_seed(int(s))
            lins = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
            members.append({k: v for j, l in enumerate(lins)
                            for k, v in ((f"W{j}", l.weight.detach().T), (f"b{j}", l.bias.detach()[None]))})
        super().__init__(members, device)
        self.n_lin = len(dims) - 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for j in range(self.n_lin):
            x = torch.baddbmm(self.p(f"b{j}"), x, self.p(f"W{j}"))
            x = F.gelu(x) if j < self.n_lin - 1 else x
        return x
