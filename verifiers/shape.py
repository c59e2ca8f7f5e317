"""Model shape at fixed size: depth/width sweeps of tiny GPTs on a Markov source of known entropy.

Every shape is trained with the same seeds, data streams and learning rate; the loss is the
expected cross-entropy against the true next-token distribution (entropy + KL, no sampling noise)
on one shared evaluation set, so shapes compare paired by seed.

Small differences in N between shapes are compensated as Kaplan et al. 2020 do in Fig. 5 (they use
their L(N) fit as the baseline): here the local slope of loss in ln N, measured per seed from the
reference shape at N and at N / size_factor, moves every shape to the reference N. The same slope
gives the yardstick: the loss gained by a size_factor-fold change in N.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples, interval_over_draws
from principia.types import Pos, PosInt, Seeds

from .lab.data import MarkovSource
from .lab.feeds import markov_eval, member_eval
from .lab.gpt import GPTConfig
from .lab.stacks import GPTStack
from .lab.shapes import ShapeRun, fit_gpt, train_shape, width_for_depth
from .lab.tuning import Layout, nested_seed, recorded, replication, scale

# What the replication of these runs is: the evidence's replication.reason.
STREAMS = ("one fixed Markov source of known entropy; each seed draws its own token stream and "
           "initialisation (the source itself is not redrawn)")
DRAWS = ("each data draw is a fresh token stream and evaluation sample of the claim's one Markov "
         "source (redrawing the source itself changes the yardstick, the 4× size gain, by up to "
         "10×); init seeds nest inside a draw")

__all__ = ["shape_sweep", "deep_narrow_transfer", "width_for_depth", "levine_depth_threshold"]


def levine_depth_threshold(N: float, d_min: float = 2.0) -> float:
    """Depth L where L = log₃(d) with d = sqrt(N / 12L): Levine et al. 2020's depth threshold
    L_th = log₃(d_x) (Abstract, §1) for a network of N non-embedding parameters."""
    lo, hi = 1e-3, N / (12 * d_min ** 2)
    for _ in range(100):  # bisection on g(L) = L - log3(sqrt(N/12L)), increasing in L
        mid = 0.5 * (lo + hi)
        if mid - math.log(math.sqrt(N / (12 * mid)), 3) > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _vertex(logL: np.ndarray, y: np.ndarray) -> float:
    """Loss-minimising log₂ depth: the vertex of a parabola in log₂ L if it opens upward and
    lies inside the sweep, else the best depth on the grid."""
    if len(logL) < 3:
        return float(logL[int(np.argmin(y))])
    a, b, _ = np.polyfit(logL, y, 2)
    if a > 0 and logL.min() <= -b / (2 * a) <= logL.max():
        return float(-b / (2 * a))
    return float(logL[int(np.argmin(y))])


def _tuned(L: int, d: int, n_head: int, src: MarkovSource, draws: list[int], seeds: list[int],
           steps: int, B: int, T: int, lr_grid: list[float], evals: dict[int, torch.Tensor],
           device: str) -> dict[int, ShapeRun]:
    """One shape at every peak of `lr_grid` for every (draw, seed) in one stack; per replicate the
    best peak on its own draw's evaluation tokens is kept -> {draw: ShapeRun}. The lab's
    `train_tuned` with a per-replicate evaluation set: the draws train at once, not in turn."""
    reps = [(dr, s) for dr in draws for s in seeds]
    lay = Layout(1, len(reps), tuple(lr_grid))
    members = lay.members()
    cfg = GPTConfig(vocab_size=src.V, n_ctx=T, n_layer=L, d_model=d, n_head=n_head)
    net = GPTStack(cfg, [nested_seed(*reps[r]) for _, r, _ in members], device)
    curves = fit_gpt(net, src, [reps[r][0] for _, r, _ in members], steps, B, T,
                     [g for _, _, g in members], device)
    loss = member_eval(net, src, torch.stack([evals[reps[r][0]] for _, r, _ in members]))
    pick = lay.choose(loss)[0]  # (replicates,) member indices
    out = {}
    for j, dr in enumerate(draws):
        mine = pick[j * len(seeds):(j + 1) * len(seeds)]
        out[dr] = ShapeRun(L, d, net.non_embedding_params(), loss[mine], curves[:, mine].mean(axis=1),
                           [float(members[i][2]) for i in mine])
    return out


def _sweep(depths: list[int], d_ref: int, L_ref: int, n_head: int, size_factor: float,
           src: MarkovSource, steps: int, B: int, T: int, lr_grid: list[float], seeds: list[int],
           draws: list[int], evals: dict[int, torch.Tensor],
           device: str) -> dict[int, tuple[dict[int, ShapeRun], ShapeRun]]:
    """Every depth at the reference N, and the reference depth at N / size_factor, each at its
    own best peak rate per replicate -> {draw: (runs by depth, small model)}."""
    args = (src, draws, seeds, steps, B, T, lr_grid, evals, device)
    runs = {L: _tuned(L, width_for_depth(L, d_ref, L_ref, n_head), n_head, *args) for L in depths}
    d_small = n_head * max(1, round(d_ref / math.sqrt(size_factor) / n_head))
    small = _tuned(L_ref, d_small, n_head, *args)
    return {dr: ({L: runs[L][dr] for L in depths}, small[dr]) for dr in draws}


def _seed_stats(runs: dict[int, ShapeRun], small: ShapeRun, depths: list[int], L_ref: int,
                size_factor: float, min_layers: int) -> dict:
    """Per-seed N-adjusted losses (Kaplan Fig. 5) and spreads in units of a size_factor× gain."""
    ref = runs[L_ref]
    slope = (small.loss - ref.loss) / math.log(ref.N / small.N)  # loss per e-fold of N, per seed
    gain = slope * math.log(size_factor)
    adj = {L: r.loss + slope * math.log(r.N / ref.N) for L, r in runs.items()}  # moved to N_ref
    A = np.stack([adj[L] for L in depths if L >= min_layers])  # (shapes, seeds)
    all_adj = np.stack([adj[L] for L in depths])
    logL = np.log2(np.array(depths, dtype=float))
    opt = np.array([_vertex(logL, all_adj[:, s]) for s in range(all_adj.shape[1])])
    out = {"spread": (A.max(0) - A.min(0)) / gain, "worst": (all_adj.max(0) - all_adj.min(0)) / gain,
           "gain": gain, "opt": opt, "edge": np.minimum(opt - logL.min(), logL.max() - opt),
           "levine": opt - math.log2(levine_depth_threshold(ref.N)), "adj": adj}
    if 1 in runs and max(depths) > 1:  # Kaplan Fig. 6: one layer against the best deeper model
        out["one_layer"] = (adj[1] - np.stack([adj[L] for L in depths if L > 1]).min(0)) / gain
    return out


def _shape_measures(stats: dict, depths: list[int], size_factor: float, min_layers: int,
                    N_ref: int) -> dict:
    """The draw is the unit of every interval (seeds averaged inside a draw)."""
    by = lambda key, f=lambda x: x: {d: f(st[key]).tolist() for d, st in stats.items()}
    deep = [L for L in depths if L >= min_layers]
    measured = {
        "spread_ratio": interval_over_draws(by("spread"), note=(
            f"(max−min) N-adjusted loss over depths {deep}, each at its best peak rate, in units "
            f"of the loss gained by a {size_factor:g}× larger model")),
        "worst_shape_ratio": interval_over_draws(by("worst"), note=f"same, over all depths {depths}"),
        "size_gain": interval_over_draws(by("gain"), unit="nats",
                                         note=f"loss gained by {size_factor:g}× N at the reference depth"),
        "optimal_depth": interval_over_draws(by("opt", np.exp2), unit="layers",
                                             note="vertex of a parabola in log₂ depth"),
        "optimum_edge_octaves": interval_over_draws(by("edge"), note=(
            "distance of the loss-minimising depth from the nearer end of the sweep, in octaves")),
        "levine_depth": Measure(levine_depth_threshold(N_ref), unit="layers",
                                note="L = log₃(d) at this N (Levine et al. 2020's depth threshold)"),
        "optimum_vs_levine_octaves": interval_over_draws(by("levine"), note=(
            "log₂(optimal depth / Levine's threshold depth)")),
    }
    if all("one_layer" in st for st in stats.values()):
        measured["one_layer_excess"] = interval_over_draws(
            by("one_layer"), note="(1-layer loss − best deeper loss) / size gain")
    return measured


def shape_sweep(depths: list[int], d_ref: PosInt, L_ref: PosInt, n_head: PosInt, size_factor: Pos,
                min_layers: PosInt, V: PosInt, order: PosInt, alpha: Pos, source_seed: int,
                data_draws: Seeds, steps: PosInt, B: PosInt, T: PosInt, lr_grid: list[float],
                seeds: Seeds, eval_seqs: PosInt, device: str) -> Evidence:
    """Loss across depths at (nearly) fixed non-embedding N, in units of a size_factor× size gain.

    Per data draw (a fresh token stream and evaluation sample of the one source) and nested
    init seed, every shape trains at each peak rate of
    `lr_grid` and keeps its best. Measures: the spread (max − min) of N-adjusted losses over
    shapes with at least `min_layers` layers over the loss gained from a size_factor-fold change
    of N at the reference shape; the one-layer model's excess in the same units (Kaplan Fig. 6);
    and the loss-minimising depth with its distance from the sweep's ends (octaves of depth).
    """
    depths = sorted(set(int(L) for L in depths) | {int(L_ref)})
    src = MarkovSource(V=V, order=order, alpha=alpha, seed=source_seed)
    evals = {d: src.sample(eval_seqs, T + 1, np.random.default_rng(1000 * source_seed + d + 7))[:, :-1]
             for d in data_draws}
    swept = _sweep(depths, d_ref, L_ref, n_head, size_factor, src, steps, B, T, lr_grid, list(seeds),
                   list(data_draws), evals, device)
    stats, table, first = {}, [], None
    for d, (runs, small) in swept.items():
        stats[d] = _seed_stats(runs, small, depths, L_ref, size_factor, min_layers)
        table += _table(d, runs, small, stats[d]["adj"], src.entropy, size_factor)
        first = first or (runs, small, stats[d])
    measured = _shape_measures(stats, depths, size_factor, min_layers, first[0][L_ref].N)
    ev = Evidence(measured=measured, figures=_figures(*first, depths, size_factor), table=table,
                  notes=[f"Source: order-{order} Markov chain over {V} tokens, entropy {src.entropy:.3f} "
                         "nats; trained on the true next-token distribution.",
                         f"Peak rates tried per shape and seed: {lr_grid}; the chosen ones are in the table."],
                  seeds=list(seeds))
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS),
                    scale(max(r.N for r in first[0].values()), steps * B * T, [f'markov:V{V}-order{order}']))


def _table(draw: int, runs: dict, small: ShapeRun, adj: dict, entropy: float,
           size_factor: float) -> list[dict]:
    rows = [{"draw": draw, "n_layer": r.L, "d_model": r.d, "N": r.N, "loss_mean": float(r.loss.mean()),
             "loss_N_adjusted": float(adj[L].mean()), "entropy": entropy, "peak_lr": r.lr}
            for L, r in runs.items()]
    return rows + [{"draw": draw, "n_layer": small.L, "d_model": small.d, "N": small.N, "peak_lr": small.lr,
                    "loss_mean": float(small.loss.mean()), "role": f"1/{size_factor:g} size"}]


def _figures(runs: dict, small: ShapeRun, st: dict, depths: list[int], size_factor: float) -> list[Figure]:
    """The first draw's N-adjusted losses and training curves (at each shape's chosen rates)."""
    adj = st["adj"]
    x = [float(L) for L in depths]
    y = [float(adj[L].mean()) for L in depths]
    lo = [float(adj[L].min()) for L in depths]
    hi = [float(adj[L].max()) for L in depths]
    ref_y = float(small.loss.mean())  # the yardstick: a size_factor× smaller model
    sweep = Figure("Loss across depth at fixed non-embedding N (first draw)", "n_layer", "expected CE (nats)",
                   [Series("N-adjusted loss (mean; band: seed range)", x, y, y_lo=lo, y_hi=hi),
                    Series(f"{size_factor:g}× smaller model", [x[0], x[-1]], [ref_y, ref_y], style="dashed")],
                   xscale="log", caption="Each shape at its own best peak rate; each point is moved "
                   "to the reference N with the per-seed slope of loss in ln N (Kaplan et al. 2020, "
                   "Fig. 5 uses its L(N) fit the same way).")
    curves = Figure("Training curves at the chosen peak rates (first draw)", "step", "training CE (nats)",
                    [Series(f"{r.L} layers, d={r.d}, N={r.N}", range(len(r.curve)), r.curve)
                     for r in runs.values()]
                    + [Series(f"{small.L} layers, d={small.d}, N={small.N}", range(len(small.curve)),
                              small.curve, style="dashed")])
    return [sweep, curves]


def deep_narrow_transfer(L_shallow: PosInt, L_deep: PosInt, d_ref: PosInt, L_ref: PosInt,
                         n_head: PosInt, V: PosInt, order: PosInt, alpha: Pos, source_seed: int,
                         resample_frac: Pos, steps: PosInt, finetune_steps: PosInt, B: PosInt,
                         T: PosInt, lr: Pos, finetune_lr: Pos, seeds: Seeds, eval_seqs: PosInt,
                         device: str) -> Evidence:
    """Pretrain a shallow-wide and a deep-narrow GPT of equal N, fine-tune both on a related
    'downstream' source, and compare downstream loss (Tay et al. 2021's comparison in small).

    The downstream source keeps the pretraining chain's rows except a fraction `resample_frac`,
    which are redrawn: the model must adapt, and what it learned upstream still helps.
    """
    up = MarkovSource(V=V, order=order, alpha=alpha, seed=source_seed)
    down = _perturbed(up, resample_frac, source_seed + 1)
    ev_up = up.sample(eval_seqs, T + 1, np.random.default_rng(source_seed + 7))[:, :-1]
    ev_dn = down.sample(eval_seqs, T + 1, np.random.default_rng(source_seed + 8))[:, :-1]
    res = {}
    for name, L in (("shallow", L_shallow), ("deep", L_deep)):
        d = width_for_depth(L, d_ref, L_ref, n_head)
        run, net = train_shape(L, d, n_head, up, seeds, steps, B, T, lr, ev_up, device)
        ft_seeds = [s + 50_000 for s in seeds]  # a fresh downstream data stream per seed
        curve = fit_gpt(net, down, ft_seeds, finetune_steps, B, T, [finetune_lr] * len(seeds),
                     device).mean(axis=1)
        res[name] = (run, markov_eval(net, down, ev_dn), curve)
    (rs, ds, _), (rd, dd, _) = res["shallow"], res["deep"]
    measured = {
        "downstream_advantage_deep": interval_from_samples(ds - dd, unit="nats", note=(
            "downstream CE of the shallow-wide model minus the deep-narrow one (> 0: deep better)")),
        "upstream_advantage_deep": interval_from_samples(rs.loss - rd.loss, unit="nats",
                                                         note="the same on the pretraining source"),
        "param_ratio": Measure(rd.N / rs.N, note="N(deep) / N(shallow)"),
    }
    ev = Evidence(measured=measured, figures=[_transfer_figure(res)], seeds=list(seeds),
                    table=[{"model": n, "n_layer": r.L, "d_model": r.d, "N": r.N,
                            "upstream_CE": float(r.loss.mean()), "downstream_CE": float(dn.mean())}
                           for n, (r, dn, _) in res.items()],
                    notes=[f"Upstream entropy {up.entropy:.3f}, downstream entropy {down.entropy:.3f} "
                           f"nats; {resample_frac:.0%} of the chain's rows redrawn downstream."])
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    scale(max(r.N for r, _, _ in res.values()), (steps + finetune_steps) * B * T, [f'markov:V{V}-order{order}']))


def _transfer_figure(res: dict) -> Figure:
    series = []
    for name, label in (("shallow", "shallow-wide"), ("deep", "deep-narrow")):
        r, _, ft = res[name]
        series.append(Series(f"{label} {r.L}×{r.d} pretrain", range(len(r.curve)), r.curve))
        series.append(Series(f"{label} fine-tune", range(len(r.curve), len(r.curve) + len(ft)), ft,
                             style="dashed"))
    return Figure("Pretraining then fine-tuning, equal N", "step", "training CE (nats)", series)


def _perturbed(src: MarkovSource, frac: float, seed: int) -> MarkovSource:
    """A copy of `src` whose rows are redrawn from the same Dirichlet with probability `frac`."""
    out = MarkovSource(V=src.V, order=src.order, alpha=src.alpha, seed=seed, support=src.support)
    keep = np.random.default_rng(seed).random(src.P.shape[0]) >= frac
    out.P = np.where(keep[:, None], src.P, out.P)
    out.pi = out._stationary()
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(out.P > 0, out.P * np.log(out.P), 0.0), axis=1)
    out.entropy = float(out.pi @ h)
    return out
