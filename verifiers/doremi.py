"""DoReMi (Xie et al. 2023) at toy scale: domain weights from a Group-DRO proxy vs the uniform mix.

1. A reference model trains on the uniform mixture; it is also the baseline.
2. A proxy of the same size trains with Group DRO on uniformly sampled batches, weighting each
   domain's loss by α, which rises with the domain's excess loss over the reference.
3. A fresh model trains on the proxy's run-averaged weights ᾱ; all three share init and data.

Replicates: each data draw is a fresh set of domains; init seeds nest inside it
(``lab.tuning.nested_seed``), so the owner id of a run keys its init, data pools and eval tokens.
"""
from __future__ import annotations

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import Frac, Pos, PosInt, Seeds

from .lab.mixtures import Pools, eval_tokens, expected_ce, mixture_stream, mlp_stack, train_tokens
from .lab.data import MarkovSource, blend_sources
from .lab.tuning import nested_seed

__all__ = ["data_mixture_weights", "doremi_weights", "steps_to_reach"]


def doremi_weights(excess: np.ndarray, alpha: np.ndarray, eta: float, c: float) -> np.ndarray:
    """One Group-DRO step (Xie et al. 2023, Alg. 1): α ← normalise(α·exp(η·λ)), then mixed with
    the uniform weights: (1-c)·α + c/k. λ is the per-domain clipped excess loss (≥ 0)."""
    logits = np.log(alpha) + eta * excess
    a = np.exp(logits - logits.max())
    a /= a.sum()
    return (1 - c) * a + c / len(a)


def _domains(V: int, supports: list[int], alpha: float, lam: float, draw: int) -> list[MarkovSource]:
    """Domains of different difficulty that share a common part, as real text domains share a
    language: rows (1-λ)·base + λ·own, the own rows spread over `support` next tokens."""
    base = MarkovSource(V=V, order=2, alpha=alpha, seed=1000 * draw + 499, support=8)
    return [blend_sources(base, MarkovSource(V=V, order=2, alpha=alpha, seed=1000 * draw + 500 + d, support=k), lam)
            for d, k in enumerate(supports)]


def _token_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-token CE. logits (M,B,T,V), y (M,B,T) -> (M,B,T)."""
    return torch.nn.functional.cross_entropy(logits.flatten(0, 2), y.flatten(), reduction="none").reshape(y.shape)


def _domain_mean(x: torch.Tensor, dom: torch.Tensor, K: int) -> torch.Tensor:
    """Mean over each domain's tokens. x (M,B,T), dom (B,) -> (M, K)."""
    onehot = torch.nn.functional.one_hot(dom, K).to(x.dtype)  # (B, K)
    return (x.mean(-1) @ onehot) / onehot.sum(0).clamp(min=1)


class _Curves:
    """Expected CE per member and domain, recorded at step 0 and every `every` steps."""

    def __init__(self, stack, ev, doms, owners, every):
        self.stack, self.ev, self.doms, self.owners, self.every = stack, ev, doms, owners, every
        self.steps, self.ce = [], []  # ce: list of (M, K)
        self.record(0)

    def record(self, step: int) -> None:
        K = len(self.doms[self.owners[0]])
        self.steps.append(step)
        self.ce.append(np.stack([expected_ce(self.stack, torch.stack([self.ev[o][d] for o in self.owners]),
                                             [self.doms[o][d] for o in self.owners]) for d in range(K)], axis=1))

    def __call__(self, step: int, logits, active) -> None:
        if (step + 1) % self.every == 0:
            self.record(step + 1)


def _proxy_weights(ref, owners, doms, pools, steps, B, lr, eta, c, d_emb, d_hidden, V) -> np.ndarray:
    """Step 2: the Group-DRO proxy on stratified uniform batches; its weights averaged over the
    run -> (owners, K)."""
    K, per = len(doms[owners[0]]), B // len(doms[owners[0]])
    dom_ids = torch.arange(K).repeat_interleave(per)
    data = torch.stack([torch.cat([pools.get(o, d, doms[o][d], steps * per).reshape(steps, per, -1)
                                   for d in range(K)], dim=1) for o in owners])
    state = {"alpha": np.full((len(owners), K), 1.0 / K), "step": 0, "trace": []}

    def dro_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = _token_ce(logits, y)  # (M, B, T)
        with torch.no_grad():  # Alg. 1: per-token excess loss clipped at zero, per domain
            ref_ce = _token_ce(ref(data[:, state["step"], :, :-1]), y)
            excess = _domain_mean((ce.detach() - ref_ce).clamp(min=0), dom_ids, K).numpy()
        state["alpha"] = np.stack([doremi_weights(excess[m], state["alpha"][m], eta, c) for m in range(len(owners))])
        state["trace"].append(state["alpha"].copy())
        state["step"] += 1
        return (_domain_mean(ce, dom_ids, K) * torch.as_tensor(state["alpha"], dtype=ce.dtype)).sum(1)
    train_tokens(mlp_stack(owners, V, d_emb, d_hidden), data, steps, lr, loss=dro_loss)
    return np.mean(state["trace"], axis=0)


def steps_to_reach(steps: list[int], curve: np.ndarray, target: float) -> float:
    """First evaluated step at which `curve` is at or below `target` (linear interpolation)."""
    for i, (s, v) in enumerate(zip(steps, curve)):
        if v <= target:
            if i == 0:
                return float(s)
            s0, v0 = steps[i - 1], curve[i - 1]
            return float(s0 + (s - s0) * (v0 - target) / (v0 - v))
    return float(steps[-1] + (steps[-1] - steps[-2]))  # not reached: one interval past the end


def _three_steps(owners, doms, T, B, steps, lr, eta, c, d_emb, d_hidden, V, eval_every):
    """Reference (= uniform baseline), proxy weights ᾱ, main model on ᾱ -> (uniform curves,
    DoReMi curves, ᾱ)."""
    pools, K = Pools(T), len(doms[owners[0]])
    ev = {o: [eval_tokens(doms[o][d], o, d, 64, T) for d in range(K)] for o in owners}
    mix = lambda w: torch.stack([mixture_stream(pools, o, doms[o], w[i], steps, B) for i, o in enumerate(owners)])
    ref = mlp_stack(owners, V, d_emb, d_hidden)
    uni = _Curves(ref, ev, doms, owners, eval_every)
    train_tokens(ref, mix(np.ones((len(owners), K))), steps, lr, on_step=uni)
    w_star = _proxy_weights(ref, owners, doms, pools, steps, B, lr, eta, c, d_emb, d_hidden, V)
    main = mlp_stack(owners, V, d_emb, d_hidden)
    dre = _Curves(main, ev, doms, owners, eval_every)
    train_tokens(main, mix(w_star), steps, lr, on_step=dre)
    return uni, dre, w_star


def data_mixture_weights(V: PosInt, supports: list[int], alpha: Pos, lam: Frac, steps: PosInt, B: PosInt, T: PosInt,
                         lr: Pos, d_hidden: PosInt, d_emb: PosInt, eta: Pos, c: Frac, eval_every: PosInt,
                         data_draws: Seeds, seeds: Seeds) -> Evidence:
    """DoReMi's three steps against the uniform mixture it starts from, paired by run."""
    owners = [nested_seed(d, s) for d in data_draws for s in seeds]
    by_draw = {d: _domains(V, supports, alpha, lam, int(d)) for d in data_draws}
    doms = {nested_seed(d, s): by_draw[d] for d in data_draws for s in seeds}
    uni, dre, w_star = _three_steps(owners, doms, T, B, steps, lr, eta, c, d_emb, d_hidden, V, eval_every)
    Hs = np.array([[d.entropy for d in doms[o]] for o in owners])  # (runs, K)
    u, r = uni.ce[-1], dre.ce[-1]
    t = np.asarray(uni.steps)
    avg_uc, avg_dc = np.stack(uni.ce).mean(2), np.stack(dre.ce).mean(2)  # (t, runs)
    speed = [steps_to_reach(list(t), avg_dc[:, i], u.mean(1)[i]) / steps for i in range(len(owners))]
    measured = {
        "avg_loss_gain": interval_from_samples(u.mean(1) - r.mean(1), unit="nats",
                                               note="mean over domains of expected CE: uniform minus DoReMi"),
        "worst_excess_gain": interval_from_samples((u - Hs).max(1) - (r - Hs).max(1), unit="nats",
                                                   note="largest per-domain excess loss (CE - entropy): uniform minus DoReMi"),
        "domains_improved": Measure(float(np.mean(r < u)), note="share of (run, domain) pairs where DoReMi's loss is lower"),
        "steps_fraction_to_uniform_avg": interval_from_samples(
            speed, note="DoReMi's steps to reach the uniform mixture's final average loss, as a share of the run; "
                        "above 1 means not reached within the run")}
    return Evidence(measured, figures=_figures(t, avg_uc, avg_dc, supports, w_star.mean(0)), seeds=list(seeds),
                    table=[{"domain": d, "support": k, "entropy": float(Hs[:, d].mean()), "weight": float(w_star.mean(0)[d]),
                            "excess_uniform": float((u - Hs)[:, d].mean()), "excess_doremi": float((r - Hs)[:, d].mean())}
                           for d, k in enumerate(supports)],
                    replication={"data_draws": len(data_draws), "seeds": len(seeds),
                                 "reason": f"{len(owners)} paired runs, init seeds nested in draws of the domains"},
                    scale={"max_params": int(mlp_stack(owners[:1], V, d_emb, d_hidden).non_embedding_params()[0]),
                           "max_tokens": steps * B * T, "data": [f"{len(supports)} order-2 Markov domains, V={V}"]})


def _figures(t, avg_uc, avg_dc, supports, mean_w) -> list[Figure]:
    K = len(supports)
    return [Figure("Average loss over domains during training", "step", "mean expected CE (nats)",
                   [Series("uniform mixture (reference)", t, avg_uc.mean(1)),
                    Series("DoReMi weights", t, avg_dc.mean(1), style="dashed")], caption="Mean over runs."),
            Figure("DoReMi domain weights", "domain (support of its rows)", "weight",
                   [Series("DoReMi ᾱ", supports, mean_w, style="points"),
                    Series("uniform", supports, [1 / K] * K, style="dashed")], xscale="log",
                   caption="Mean over runs of the proxy's run-averaged weights.")]
