"""Data mixtures on synthetic domains whose entropies are known exactly.

A domain is an order-2 Markov source over V tokens. Losses are expected cross-entropies against
the true next-token law (entropy + KL), so a comparison between two models trained on the same
tokens carries no sampling noise from the evaluation. Every condition is trained on exactly the
same number of tokens; the members of one comparison share their seed (initial weights and data
pools), and all members train together as one stacked model.

- data_diversity: a mixture of several related domains vs one of them, judged on a domain that
  neither saw (Le Scao et al. 2022).
- data_mixture_weights (``verifiers.doremi``): DoReMi-style re-weighting (Xie et al. 2023) of
  domains of different difficulty vs the uniform mixture.
- domain_pretraining: a domain whose tokens are rare in general text: domain-only vs general vs
  a 51/49 mix (Wu et al. 2023, BloombergGPT).
"""
from __future__ import annotations

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import Frac, Pos, PosInt, Seeds

from verifiers.lab.data import MarkovSource, blend_sources, with_rows
from verifiers.lab.measure import one_thread
from verifiers.lab.stacks import mlp_params
from verifiers.lab.tuning import recorded, replication, scale
from verifiers.lab.mixtures import Pools, eval_tokens, expected_ce, mixture_stream, mlp_stack, train_tokens

__all__ = ["data_diversity", "domain_pretraining"]


def _family(seed: int, V: int, K: int, alpha: float, support: int, lam: float) -> list[MarkovSource]:
    """K related domains: a shared base chain blended with each domain's own chain."""
    def chain(k: int) -> MarkovSource:
        return MarkovSource(V=V, order=2, alpha=alpha, seed=1000 * seed + k, support=support)
    base = chain(1)
    return [blend_sources(base, chain(2 + d), lam) for d in range(K)]


def data_diversity(V: PosInt, K: PosInt, alpha: Pos, support: PosInt, lam: Frac, steps: PosInt, B: PosInt,
                   T: PosInt, lr: Pos, d_hidden: PosInt, d_emb: PosInt, seeds: Seeds) -> Evidence:
    """Loss on an unseen domain after training on one domain vs on a uniform mixture of K."""
    pools = Pools(T)
    streams, members, fams = [], [], []
    for s in seeds:
        fam = _family(s, V, K + 1, alpha, support, lam)  # domains 0..K-1 train, domain K is held out
        fams.append(fam)
        train = fam[:K]
        streams.append(mixture_stream(pools, s, train, np.eye(K)[0], steps, B))  # one source
        streams.append(mixture_stream(pools, s, train, np.ones(K), steps, B))  # mixture
        members += [s, s]  # same initial weights for the pair
    model = mlp_stack(members, V, d_emb, d_hidden)
    def score(d: int) -> np.ndarray:  # expected CE of every member on domain d of its family
        srcs = [fams[i // 2][d] for i in range(len(members))]
        toks = torch.stack([eval_tokens(src, m, d, 128, T) for src, m in zip(srcs, members)])
        return expected_ce(model, toks, srcs)

    with one_thread("cpu"):  # matrices this small: a second thread only contends (14× slower under load)
        train_tokens(model, torch.stack(streams), steps, lr)  # data (M, steps, B, T+1)
        held, own = score(K), score(0)
    return recorded(_diversity_evidence(held, own, np.array([f[K].entropy for f in fams]), seeds, steps * B * T, K, lam),
                    replication(len(seeds), 1, "each seed redraws its family of K + 1 Markov domains, its "
                                "token streams and the initialisation shared by the single/mixture pair"),
                    scale(mlp_params(V, 2, d_emb, d_hidden, 1), steps * B * T, [f"markov-family:V{V}-K{K}-order2"]))


def _diversity_evidence(held_ce, own_ce, H, seeds, tokens, K, lam) -> Evidence:
    gain = held_ce[0::2] - held_ce[1::2]  # single minus mixture, per seed
    cost = own_ce[1::2] - own_ce[0::2]  # mixture minus single on the single source's own domain
    measured = {
        "heldout_gain": interval_from_samples(gain.tolist(), unit="nats",
                                              note="held-out-domain loss: single source minus mixture"),
        "heldout_gain_share": interval_from_samples(
            (gain / (held_ce[0::2] - H)).tolist(),
            note="gain as a share of the single-source model's excess loss (KL) on the held-out domain"),
        "in_domain_cost": interval_from_samples(cost.tolist(), unit="nats",
                                                note="loss on domain 0: mixture minus single source"),
    }
    x = list(range(len(seeds)))
    fig = Figure("Loss on a domain neither model saw", "seed", "expected CE (nats/token)",
                 [Series("one source", x, held_ce[0::2], style="points"),
                  Series("uniform mixture of K sources", x, held_ce[1::2], style="points"),
                  Series("entropy of the held-out domain", x, H, style="dashed")],
                 caption=f"Equal tokens ({tokens:,}); K = {K} related domains (shared part 1-λ = {1 - lam:g}).")
    table = [{"seed": s, "heldout_single": a, "heldout_mix": b, "domain0_single": c,
              "domain0_mix": d, "heldout_entropy": h}
             for s, a, b, c, d, h in zip(seeds, held_ce[0::2], held_ce[1::2], own_ce[0::2],
                                         own_ce[1::2], H)]
    return Evidence(measured, figures=[fig], table=table, seeds=list(seeds))


def _rare_vocab_pair(V_common: int, V_rare: int, alpha: float, lam: float, eps: float,
                     seed: int) -> tuple[MarkovSource, MarkovSource]:
    """General text where the last V_rare tokens are rare (mass × eps), and a domain that uses
    them: its rows blend the general rows with rows supported on the rare tokens only."""
    V = V_common + V_rare
    base = MarkovSource(V=V, order=2, alpha=alpha, seed=1000 * seed + 700)
    P = base.P.copy()
    P[:, V_common:] *= eps
    general = with_rows(base, P)
    rng = np.random.default_rng(1000 * seed + 701)
    Q = np.zeros_like(P)
    Q[:, V_common:] = rng.dirichlet(np.full(V_rare, alpha), size=P.shape[0])
    return general, with_rows(base, (1 - lam) * general.P + lam * Q)


def domain_pretraining(V_common: PosInt, V_rare: PosInt, alpha: Pos, lam: Frac, eps: Frac, domain_share: Frac,
                       steps: PosInt, B: PosInt, T: PosInt, lr: Pos, d_hidden: PosInt, d_emb: PosInt,
                       seeds: Seeds) -> Evidence:
    """In-domain and general loss after domain-only, general-only and mixed pretraining."""
    V = V_common + V_rare
    pools = Pools(T)
    recipes = {"general": 0.0, "mixed": domain_share, "domain": 1.0}
    streams, members, pairs = [], [], {}
    for s in seeds:
        gen, dom = _rare_vocab_pair(V_common, V_rare, alpha, lam, eps, s)
        pairs[s] = (gen, dom)
        for share in recipes.values():
            streams.append(mixture_stream(pools, s, [gen, dom], np.array([1 - share, share]), steps, B))
            members.append(s)
    model = mlp_stack(members, V, d_emb, d_hidden)
    R = len(recipes)
    out = {}
    with one_thread("cpu"):  # matrices this small: a second thread only contends
        train_tokens(model, torch.stack(streams), steps, lr)
        for which, idx in (("general", 0), ("domain", 1)):
            toks = torch.stack([eval_tokens(pairs[m][idx], m, idx, 128, T) for m in members])
            out[which] = expected_ce(model, toks, [pairs[m][idx] for m in members]).reshape(-1, R)
    rare_mass = float(np.mean([pairs[s][0].pi @ pairs[s][0].P[:, V_common:].sum(1) for s in seeds]))
    notes = [f"Domain entropy {np.mean([pairs[s][1].entropy for s in seeds]):.3f}, "
             f"general entropy {np.mean([pairs[s][0].entropy for s in seeds]):.3f} nats."]
    return recorded(_recipe_evidence(out["domain"], out["general"], list(recipes), seeds, rare_mass, V_rare, notes),
                    replication(len(seeds), 1, "each seed redraws its general/domain Markov pair, its token "
                                "streams and the initialisation shared by the three recipes"),
                    scale(mlp_params(V, 2, d_emb, d_hidden, 1), steps * B * T,
                          [f"markov-general:V{V}-order2", f"markov-domain:V{V}-order2"]))


def _recipe_evidence(dom_ce, gen_ce, names, seeds, rare_mass, V_rare, notes) -> Evidence:
    """dom_ce, gen_ce: (seeds, recipe) with recipes general, mixed, domain."""
    g, x, d = 0, 1, 2
    measured = {
        "domain_gain_vs_general": interval_from_samples(
            (dom_ce[:, g] - dom_ce[:, d]).tolist(), unit="nats",
            note="in-domain loss: general-only minus domain-only"),
        "mixed_domain_recovery": interval_from_samples(
            ((dom_ce[:, g] - dom_ce[:, x]) / (dom_ce[:, g] - dom_ce[:, d])).tolist(),
            note="share of the domain-only model's in-domain gain that the 51/49 mix keeps"),
        "mixed_general_retention": interval_from_samples(
            ((gen_ce[:, d] - gen_ce[:, x]) / (gen_ce[:, d] - gen_ce[:, g])).tolist(),
            note="share of the general-only model's lead on general text that the mix keeps"),
    }
    fig = Figure("Loss by pretraining recipe (equal tokens)", "recipe (0 general, 1 mixed 51/49, 2 domain)",
                 "expected CE (nats/token)",
                 [Series("on domain text", [0, 1, 2], dom_ce.mean(0), style="points"),
                  Series("on general text", [0, 1, 2], gen_ce.mean(0), style="points")],
                 caption=f"Mean over {len(seeds)} seeds; the domain's {V_rare} special tokens carry "
                         f"{rare_mass:.1%} of general text.")
    table = [{"seed": s, **{f"domain_ce_{n}": float(dom_ce[i, j]) for j, n in enumerate(names)},
              **{f"general_ce_{n}": float(gen_ce[i, j]) for j, n in enumerate(names)}}
             for i, s in enumerate(seeds)]
    return Evidence(measured, figures=[fig], table=table, seeds=list(seeds), notes=notes)
