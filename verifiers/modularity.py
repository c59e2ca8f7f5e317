"""Activation sparsity and emerging modularity of an MLP language model's FFN neurons.

modularity_emerges: the share of active FFN neurons over training (Li et al. 2022), and whether
the functions of neuron clusters ("experts") settle before single neurons' do (Zhang et al. 2023).
"""
from __future__ import annotations

import numpy as np

from principia.evidence import Evidence, Figure, Series, interval_from_samples
from principia.types import Pos, PosInt, Seeds

__all__ = ["predictivity", "kmeans_partition", "modularity_emerges"]


def _zscore(A: np.ndarray) -> np.ndarray:
    sd = A.std(0)
    return (A - A.mean(0)) / np.where(sd > 0, sd, 1.0)


def predictivity(H: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Correlation of each neuron's activation with each binary concept: (neurons, concepts).

    Stands in for the average precision Zhang et al. 2023 (§3) use; both rank how well a
    neuron's activation picks out the inputs that carry the concept.
    """
    return _zscore(H).T @ _zscore(Y) / len(H)


def kmeans_partition(W: np.ndarray, E: int, rng: np.random.Generator, iters: int = 30) -> np.ndarray:
    """Cluster neurons by their input weight vectors (rows of W): MoEfication's parameter split,
    without its balancing. Returns an expert id per neuron."""
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True).clip(min=1e-12)
    C = Wn[rng.choice(len(Wn), E, replace=False)]
    for _ in range(iters):
        lab = np.argmax(Wn @ C.T, axis=1)  # cosine similarity
        C = np.stack([Wn[lab == e].mean(0) if (lab == e).any() else C[e] for e in range(E)])
        C /= np.linalg.norm(C, axis=1, keepdims=True).clip(min=1e-12)
    return np.argmax(Wn @ C.T, axis=1)


def _expert_scores(P: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """An expert's predictivity is the mean of its neurons' (as in Zhang et al.'s code). Experts
    come in the order of their first neuron, so a partition into single neurons gives P itself."""
    _, first = np.unique(lab, return_index=True)
    member = (lab[None, :] == lab[np.sort(first)][:, None]).astype(P.dtype)  # (experts, neurons)
    return member @ P / member.sum(1, keepdims=True)


def _adjacent_spearman(Ps: list[np.ndarray]) -> np.ndarray:
    """Spearman correlation of predictivity across units between consecutive checkpoints,
    averaged over concepts. Ps[t]: (units, concepts) -> (checkpoints - 1,)."""
    from scipy.stats import rankdata

    out = []
    for a, b in zip(Ps, Ps[1:]):
        ra, rb = _zscore(rankdata(a, axis=0)), _zscore(rankdata(b, axis=0))
        out.append(float((ra * rb).mean()))
    return np.array(out)


def _concepts(probe, V: int) -> np.ndarray:
    """Binary labels "current token is v" and "previous token is v": (positions, 2V)."""
    tok = probe.cpu().numpy()
    prev = np.concatenate([np.full((len(tok), 1), -1), tok[:, :-1]], axis=1)
    return np.concatenate([(tok.reshape(-1, 1) == np.arange(V)),
                           (prev.reshape(-1, 1) == np.arange(V))], axis=1).astype(float)


def _train_snapshots(src, d_hidden: int, steps: int, B: int, T: int, lr: float, ckpt_every: int,
                     seeds: list[int], probe, device: str):
    """MLP LMs trained together; GELU outputs on the probe every `ckpt_every` steps.
    -> checkpoint steps, activations (checkpoints, M, positions, neurons), first-layer weights."""
    import torch

    from verifiers.lab.batched import BatchedAdamW, lr_table, train
    from verifiers.lab.stacks import MLPStack

    M = len(seeds)
    data = torch.stack([src.sample(steps * B, T + 1, np.random.default_rng([s, 1])).view(steps, B, -1)
                        for s in seeds]).to(device)
    model = MLPStack(src.V, 2, 32, [d_hidden] * M, 1, seeds, device)
    ckpt, acts = [], []

    def snapshot(step: int, *_) -> None:
        if step % ckpt_every == 0:
            with torch.no_grad():
                acts.append(model.hidden(probe.expand(M, -1, -1)).cpu().numpy())
            ckpt.append(step)

    snapshot(0)
    # AdamW with torch's default betas and no weight decay, cosine to zero over the run.
    train(model, BatchedAdamW(model, (0.9, 0.999)), lambda i, act: (data[:, i, :, :-1], data[:, i, :, 1:]),
          lr_table([lr] * M, [steps] * M, "cosine"), [steps] * M, [0.0] * M,
          on_step=lambda step, *_: snapshot(step + 1))
    return ckpt, np.stack(acts), model.p("W0").detach().cpu().numpy()


def _stability_gaps(A: np.ndarray, Y: np.ndarray, W_in: np.ndarray, E: int, n_random: int,
                    seeds: list[int]):
    """Per seed: first-half mean of (expert − neuron) and (expert − random) stability, and curves."""
    half = (A.shape[0]) // 2  # the first half of training, in consecutive-checkpoint pairs
    gap_neuron, gap_random, curves = [], [], []
    for m, s in enumerate(seeds):
        rng = np.random.default_rng([s, 5])
        lab = kmeans_partition(W_in[m].T, E, rng)
        P = [predictivity(A[t, m], Y) for t in range(A.shape[0])]
        neu = _adjacent_spearman(P)
        exp = _adjacent_spearman([_expert_scores(p, lab) for p in P])
        rnds = [_adjacent_spearman([_expert_scores(p, perm) for p in P])
                for perm in (rng.permutation(lab) for _ in range(n_random))]
        rnd = np.mean(rnds, axis=0)
        gap_neuron.append(float((exp - neu)[:half].mean()))
        # gap per random partition, then averaged: exactly 0 when the partitions cannot differ
        gap_random.append(float(np.mean([(exp - r)[:half].mean() for r in rnds])))
        curves.append((neu, exp, rnd))
    return gap_neuron, gap_random, curves


def modularity_emerges(V: PosInt, support: PosInt, alpha: Pos, d_hidden: PosInt, E: PosInt,
                       steps: PosInt, B: PosInt, T: PosInt, lr: Pos, ckpt_every: PosInt,
                       n_random: PosInt, seeds: Seeds, device: str) -> Evidence:
    """Active FFN neurons over training, and how fast neuron- vs expert-level functions settle.

    Concepts: "the current input token is v" and "the previous one is v" (2V of them). Experts:
    k-means clusters of the final model's FFN input weights (MoEfication). Stability: Spearman
    correlation of predictivities between consecutive checkpoints (Zhang et al. 2023, §6).
    """
    from verifiers.lab.data import MarkovSource

    src = MarkovSource(V=V, order=2, alpha=alpha, seed=1234, support=support)
    probe = src.sample(64, T, np.random.default_rng(4321)).to(device)  # one fixed probe set
    ckpt, A, W_in = _train_snapshots(src, d_hidden, steps, B, T, lr, ckpt_every, seeds, probe, device)
    active = (A > 0).mean(axis=(2, 3))  # GELU(u) > 0 exactly when u > 0
    gap_neuron, gap_random, curves = _stability_gaps(A, _concepts(probe, V), W_in, E, n_random, seeds)
    measured = {
        "active_drop": interval_from_samples(
            (active[0] - active[-1]).tolist(),
            note="share of positive FFN activations: at initialisation minus after training"),
        "active_final": interval_from_samples(active[-1].tolist(),
                                              note="share of positive activations after training"),
        "expert_minus_neuron_stability": interval_from_samples(
            gap_neuron, note="mean over the first half of training of the consecutive-checkpoint "
                             "Spearman correlation: experts minus neurons"),
        "expert_minus_random_stability": interval_from_samples(
            gap_random, note="the same, experts minus random partitions with the experts' sizes "
                             "(what averaging alone would give)"),
    }
    table = [{"seed": s, "active_init": float(active[0, m]), "active_final": float(active[-1, m]),
              "expert_minus_neuron": gap_neuron[m], "expert_minus_random": gap_random[m]}
             for m, s in enumerate(seeds)]
    from verifiers.lab.stacks import mlp_params
    from verifiers.lab.tuning import recorded, replication, scale

    ev = Evidence(measured, figures=_figures(ckpt, active, curves, d_hidden, V, E), table=table,
                  seeds=list(seeds))
    return recorded(ev, replication(len(seeds), 1, "one fixed Markov source; each seed draws its "
                                                   "own token stream and initialisation"),
                    scale(mlp_params(V, 2, 32, d_hidden, 1), steps * B * T, [f"markov:V{V}-order2"]))


def _figures(ckpt, active, curves, d_hidden: int, V: int, E: int) -> list[Figure]:
    x = np.asarray(ckpt)
    cm = np.mean(curves, axis=0)  # (3, checkpoints - 1)
    return [Figure("Active FFN neurons during training", "step", "share of activations > 0",
                   [Series("mean over seeds", x, active.mean(1), y_lo=active.min(1), y_hi=active.max(1))],
                   caption=f"MLP LM, {d_hidden} GELU neurons, order-2 source over {V} tokens."),
            Figure("Stability between consecutive checkpoints", "step", "Spearman correlation",
                   [Series("neurons", x[1:], cm[0]),
                    Series(f"experts (k-means, E = {E})", x[1:], cm[1], style="dashed"),
                    Series("random partitions, same sizes", x[1:], cm[2], style="points")],
                   caption="Predictivity for 2V token-identity concepts; mean over seeds.")]
