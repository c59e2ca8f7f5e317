"""Training stability: layer-norm placement and gradient clipping (z-loss: ``zloss.py``;
early-warning signals: ``early_warning.py``).

Runs use the lab's batched GPT stack (runs of every arm in one batched model, each with its own
init and data) on Markov sources of known entropy, except the clipping claim, which uses Pascanu et al.
2012's one-unit recurrent network, whose loss surface has a cliff.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import Pos, PosInt, Seeds

from .lab.data import MarkovSource
from .lab.gpt import GPTConfig
from .lab.batched import BatchedAdamW, lr_table, member_ce, train
from .lab.stacks import GPTStack
from .lab.tuning import nested_seed, recorded, replication, scale
from .lab.replicates import draw_batches, draw_eval, gpt_stack, members_of

__all__ = ["pre_norm", "NORM_TABLE", "grad_clipping", "unigram_entropy"]

# --- pre-norm vs post-norm ----------------------------------------------------------------

# The seed's table (BM-Principles, How 4.3) against what each model's own paper states.
# (model, seed says, paper says, where the paper says it)
NORM_TABLE: tuple[tuple[str, str, str, str], ...] = (
    ("Llama", "pre", "pre", "Touvron et al. 2023, §2.2 'Pre-normalization' (RMSNorm on each sub-layer input)"),
    ("GLM-130B", "post", "post", "Zeng et al. 2022, §2.1 'Layer Normalization': DeepNorm, a Post-LN variant"),
    ("Pythia", "post", "pre", "Biderman et al. 2023, §2.3 (GPT-NeoX blocks); Black et al. 2022, §2.1: "
                              "x + Attn(LN₁(x)) + FF(LN₂(x)), LayerNorm on the block's input"),
    ("BLOOM", "pre", "pre", "Le Scao et al. 2022 (BLOOM), §3.2.2 and Fig. 5: pre-LN blocks plus an embedding LayerNorm"),
    ("StarCoder", "pre", "pre", "Li et al. 2023, §5 (model architecture): SantaCoder's GPT-2 decoder; Radford et al. 2019, "
                                "§2.3: LayerNorm moved to each sub-block's input"),
)


def _stack(norm: str, init: str, L: int, d: int, n_head: int, V: int, T: int, draws, members) -> GPTStack:
    """The GPT stack with the lab's init, or ('xavier') the init of Xiong et al.'s analysis:
    Xavier-normal weight matrices and unit-norm token/position vectors (N(0, 1/d) entries).
    Members with the same (draw, seed) get the same weights, whatever arm they belong to."""
    stack = gpt_stack(GPTConfig(vocab_size=V, n_ctx=T, n_layer=L, d_model=d, n_head=n_head, norm=norm), draws, members)
    if init not in ("lab", "xavier"):
        raise ValueError(f"init must be 'lab' or 'xavier' (got {init!r})")
    if init == "lab":
        return stack
    with torch.no_grad():
        for k, (j, s) in enumerate(members):
            gen = torch.Generator().manual_seed(nested_seed(draws[j], s) + 777)
            for name in stack.shapes:
                p = stack.p(name)[k]
                if name in ("wte.weight", "wpe.weight"):
                    p.copy_(torch.randn(p.shape, generator=gen) * d ** -0.5)
                elif p.dim() == 2:  # (out, in)
                    p.copy_(torch.randn(p.shape, generator=gen) * math.sqrt(2.0 / sum(p.shape)))
    return stack


def _grad_norms_at_init(norm, init, L, d, n_head, srcs, draws, members, B, T) -> np.ndarray:
    """‖∂loss/∂W₂‖ of each layer's FFN output matrix at initialisation -> (L, members).
    W₂ (here mlp.proj) is the matrix Xiong et al. 2020 plot in Fig. 3."""
    stack = _stack(norm, init, L, d, n_head, srcs[0].V, T, draws, members)
    inp, tgt = draw_batches(srcs, draws, members, B, T, soft=True)(0, list(range(stack.K)))
    member_ce(stack(inp), tgt).sum().backward()
    return np.stack([stack.p(f"blocks.{i}.mlp.proj.weight").grad.flatten(1).norm(dim=1).numpy() for i in range(L)])


def _train_arms(srcs, evs, draws, seeds, norms, init, L, d, n_head, lr, warmup, steps, B, T) -> dict:
    """Final expected CE and training curves of the four arms (norm × warm-up); one stack per
    arm ('pre', 'post': placements norms[0], norms[1]), its members the runs without and then with
    warm-up (same init and data)."""
    members = members_of(len(draws), seeds, repeat=2)
    n, K = len(members) // 2, len(members)
    no_wu, wu = (lr_table([lr] * n, [steps] * n, "cosine", w) for w in (0, warmup))
    out = {}
    for norm, placed in zip(("pre", "post"), norms):
        stack = _stack(placed, init, L, d, n_head, srcs[0].V, T, draws, members)
        tr = train(stack, BatchedAdamW(stack, betas=(0.9, 0.95)), draw_batches(srcs, draws, members, B, T, soft=True),
                   lambda t: torch.cat([no_wu(t), wu(t)]), [steps] * K, [0.0] * K)
        ce, loss = np.nan_to_num(draw_eval(stack, srcs, members, evs), nan=math.log(srcs[0].V)), tr.array("loss")
        out[(norm, False)], out[(norm, True)] = (ce[:n], loss[:, :n]), (ce[n:], loss[:, n:])
    return out


def _norm_runs(draws, seeds, norms, init, L, d, n_head, lr, warmup, steps, B, B_init, T, V, order, alpha,
               eval_seqs):
    """Gradient norms at init ({(init, arm): (L, runs)}), final CE per arm ({arm: (runs,)}) and
    the arms' training curves, runs = draws × seeds; arm 'pre' is placed norms[0], 'post' norms[1]."""
    srcs = [MarkovSource(V=V, order=order, alpha=alpha, seed=int(s)) for s in draws]
    evs = [src.sample(eval_seqs, T + 1, np.random.default_rng(int(s) + 7))[:, :-1] for src, s in zip(srcs, draws)]
    members = members_of(len(draws), seeds)
    g = {(i, n): _grad_norms_at_init(placed, i, L, d, n_head, srcs, draws, members, B_init, T)
         for i in (init, "lab") for n, placed in zip(("pre", "post"), norms)}
    arms = _train_arms(srcs, evs, draws, seeds, norms, init, L, d, n_head, lr, warmup, steps, B, T)
    return g, {k: ce for k, (ce, _) in arms.items()}, {k: c for k, (_, c) in arms.items()}


def pre_norm(norms: list[str], L: PosInt, d: PosInt, n_head: PosInt, init: str, lr: Pos, warmup: PosInt,
             steps: PosInt, B: PosInt, B_init: PosInt, T: PosInt, V: PosInt, order: PosInt, alpha: Pos,
             data_draws: Seeds, seeds: Seeds, eval_seqs: PosInt) -> Evidence:
    """Pre-LN vs post-LN: gradient norms per layer at init, and training at a high peak LR with
    and without warm-up (Xiong et al. 2020, Fig. 3 and Thm. 1; §3.2 on warm-up). Plus the seed's
    table of published models checked against their papers. `norms` places the two arms
    (['pre', 'post']; a falsifier gives both the same placement)."""
    g, final, curves = _norm_runs(data_draws, seeds, norms, init, L, d, n_head, lr, warmup, steps, B, B_init, T,
                                  V, order, alpha, eval_seqs)
    measured = {**_training_measures(final, steps, lr, warmup), **_init_measures(g, init), **_table_measures()}
    layers = list(range(1, L + 1))
    gi = {n: g[(init, n)] for n in ("pre", "post")}
    figs = [Figure("Gradient norm of each layer's FFN output matrix at init", "layer", "‖∂L/∂W₂‖",
                   [Series(f"{n}-LN", layers, v.mean(1), y_lo=v.min(1), y_hi=v.max(1)) for n, v in gi.items()],
                   yscale="log", caption="Xiong et al. 2020, Fig. 3: post-LN grows with the layer index, pre-LN does not."),
            Figure(f"Training at peak LR {lr:g}, with and without {warmup} warm-up steps", "step", "training CE (nats)",
                   [Series(f"{n}-LN, {'warm-up' if w else 'no warm-up'}", range(len(c)), np.nanmean(c, 1))
                    for (n, w), c in curves.items()])]
    table = [{"model": m, "seed_says": s, "paper_says": p, "where": w} for m, s, p, w in NORM_TABLE]
    runs = len(data_draws) * len(seeds)
    return Evidence(measured=measured, figures=figs, table=table, seeds=list(seeds),
                    replication={"data_draws": len(data_draws), "seeds": len(seeds),
                                 "reason": f"{runs} paired runs per arm, seeds nested in Markov-source draws"},
                    scale={"max_params": 12 * L * d * d + V * d, "max_tokens": steps * B * T,
                           "data": [f"order-{order} Markov, V={V}"]},
                    notes=[f"Runs use the '{init}' initialisation; the gradient measures are repeated with the "
                           "lab GPT's own init (N(0, 0.02), residual projections scaled by 1/sqrt(2L)), whose "
                           "tiny residual stream is amplified by pre-LN's final LayerNorm."])


def _training_measures(final: dict, steps: int, lr: float, warmup: int) -> dict:
    pre, post = final[("pre", False)], final[("post", False)]
    pre_w, post_w = final[("pre", True)], final[("post", True)]
    return {
        "final_loss_gap_post_minus_pre": interval_from_samples(
            post - pre, unit="nats", note=f"expected CE after {steps} steps at peak LR {lr:g}, no warm-up"),
        "warmup_gain_post": interval_from_samples(
            post - post_w, unit="nats", note=f"post-LN: no warm-up minus {warmup} warm-up steps"),
        "warmup_gain_pre": interval_from_samples(pre - pre_w, unit="nats", note="the same for pre-LN"),
        "warmup_need_post_minus_pre": interval_from_samples(
            (post - post_w) - (pre - pre_w), unit="nats", note="how much more post-LN gains from warm-up than pre-LN"),
        "gap_post_warmup_minus_pre": interval_from_samples(
            post_w - pre, unit="nats", note="post-LN with warm-up against pre-LN without"),
    }


def _init_measures(g: dict, init: str) -> dict:
    pre, post, lpre, lpost = g[(init, "pre")], g[(init, "post")], g[("lab", "pre")], g[("lab", "post")]
    return {
        "grad_growth_post": interval_from_samples(post[-1] / post[0], note="‖∇W₂‖ last layer / first layer, post-LN, at init"),
        "grad_growth_pre": interval_from_samples(pre[-1] / pre[0], note="the same, pre-LN"),
        "last_layer_grad_post_over_pre": interval_from_samples(post[-1] / pre[-1], note="‖∇W₂‖ of the last layer at init"),
        "last_layer_grad_post_over_pre_lab_init": interval_from_samples(
            lpost[-1] / lpre[-1], note="the same with the lab GPT's N(0, 0.02) init"),
        "grad_growth_post_lab_init": interval_from_samples(lpost[-1] / lpost[0]),
    }


def _table_measures() -> dict:
    n = len(NORM_TABLE)
    return {
        "pre_norm_share_papers": Measure(sum(p == "pre" for _, _, p, _ in NORM_TABLE) / n, n=n,
                                         note="pre-LN share of the seed's five models, per their papers"),
        "pre_norm_share_seed_table": Measure(sum(s == "pre" for _, s, _, _ in NORM_TABLE) / n, n=n,
                                             note="the same, per the seed's table"),
        "seed_table_agreement": Measure(sum(s == p for _, s, p, _ in NORM_TABLE) / n, n=n,
                                        note="rows where the seed's table matches the paper"),
    }


def unigram_entropy(src: MarkovSource) -> float:
    """Entropy of the stationary token marginal: the loss of a model that ignores context."""
    V, k = src.V, src.order
    p = src.pi.reshape(V ** (k - 1), V).sum(0) if k > 1 else src.pi
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# --- gradient clipping on a cliff -------------------------------------------------------------

def _rnn_loss(w: torch.Tensor, b: torch.Tensor, x0: float, steps: int, target: float) -> torch.Tensor:
    """(x_T − target)² for the one-unit RNN x_t = w·tanh(x_{t−1}) + b, elementwise over (w, b)."""
    x = torch.full_like(w, x0)
    for _ in range(steps):
        x = w * torch.tanh(x) + b
    return (x - target) ** 2


def _clip_runs(threshold_rel, eta, gd_steps, n_inits, T, x0, target, w_range, b_range, catapult, solved, seeds):
    """Per seed and arm (clip False/True): catapult, solved and setback rates, mean final loss and
    steps to solve; the first seed's mean loss curves; the last seed's threshold."""
    stats = {k: {True: [], False: []} for k in "csfuh"}
    trace, threshold = {}, float("inf")
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        w0 = w_range[0] + (w_range[1] - w_range[0]) * torch.rand(n_inits, generator=gen, dtype=torch.float64)
        b0 = b_range[0] + (b_range[1] - b_range[0]) * torch.rand(n_inits, generator=gen, dtype=torch.float64)
        threshold = float("inf")
        for clip in (False, True):
            jump, losses, gnorm = _descend(w0, b0, clip, threshold, eta, gd_steps, T, x0, target)
            if not clip:  # typical norm while still training (solved runs have ~0 gradient)
                threshold = threshold_rel * float(gnorm[losses[:-1] >= solved].median())
            halved = torch.cummin(losses, 0).values[:-1] < 0.5 * losses[0]
            hit = losses < solved
            for k, v in (("c", (jump > catapult).double().mean()), ("s", (losses[-1] < solved).double().mean()),
                         ("f", losses[-1].mean()), ("u", ((losses[1:] >= losses[0]) & halved).any(0).double().mean()),
                         ("h", torch.where(hit.any(0), hit.double().argmax(0), len(losses)).double().mean())):
                stats[k][clip].append(float(v))
            trace.setdefault(clip, losses.mean(1).numpy())
    arrays = [{c: np.array(v) for c, v in stats[k].items()} for k in "csfuh"]
    return (*arrays, trace, threshold)


def grad_clipping(threshold_rel: Pos, eta: Pos, gd_steps: PosInt, n_inits: PosInt, T: PosInt, x0: float,
                  target: float, w_range: list[float], b_range: list[float], catapult: Pos, solved: Pos,
                  seeds: Seeds) -> Evidence:
    """Gradient descent on a one-unit RNN's loss surface, from many starting points, with and
    without norm clipping (Pascanu et al. 2012, Fig. 6 and §3.2, Algorithm 1).

    The clipping threshold is `threshold_rel` times the median gradient norm of the unclipped
    runs, the paper's heuristic (§3.2: set it from the average norm over many updates; the median
    keeps the cliff's huge values from dominating; updates of runs already solved are left out). A 'catapult' is a single step that moves
    (w, b) farther than `catapult` (a quarter of the box the starts are drawn from); a 'setback'
    is a step that undoes all progress (the loss returns to at least its starting value after
    having halved); a run is 'solved' when its final loss is below `solved`. Both arms start
    from the same points (paired by seed)."""
    C, S, F_, U, H, trace, threshold = _clip_runs(threshold_rel, eta, gd_steps, n_inits, T, x0, target, w_range,
                                                 b_range, catapult, solved, seeds)
    measured = {
        "catapult_rate_unclipped": interval_from_samples(C[False], note=f"share of runs with a step ‖Δθ‖ > {catapult:g}"),
        "catapult_rate_clipped": interval_from_samples(C[True], note="bounded by construction: ‖Δθ‖ ≤ η·threshold"),
        "solved_rate_gain": interval_from_samples(S[True] - S[False], note=f"share of runs ending below loss {solved:g}, clipped minus unclipped"),
        "solved_rate_unclipped": interval_from_samples(S[False]),
        "solved_rate_clipped": interval_from_samples(S[True]),
        "final_loss_gain": interval_from_samples(F_[False] - F_[True], note="mean final loss, unclipped minus clipped"),
        "setback_rate_reduction": interval_from_samples(U[False] - U[True], note=(
            "share of runs with a step that undoes all progress, unclipped minus clipped")),
        "setback_rate_unclipped": interval_from_samples(U[False]),
        "setback_rate_clipped": interval_from_samples(U[True]),
        "threshold": Measure(threshold, note="clipping threshold of the last seed"),
        "steps_to_solve_unclipped": interval_from_samples(H[False], unit="steps"),
        "steps_to_solve_clipped": interval_from_samples(H[True], unit="steps"),
    }
    fig = Figure("Mean loss along gradient descent (first seed)", "step", "loss",
                 [Series("unclipped", range(len(trace[False])), trace[False]),
                  Series(f"clipped at {threshold_rel:g}× the median ‖g‖", range(len(trace[True])), trace[True])],
                 yscale="log")
    return recorded(Evidence(measured=measured, figures=[fig], seeds=list(seeds),
                    notes=[f"x_t = w·tanh(x_(t−1)) + b, x_0 = {x0}, loss (x_{T} − {target})²; "
                           f"{n_inits} starts per seed in w ∈ {w_range}, b ∈ {b_range}; step size {eta}."]),
                    replication(1, len(seeds), f"no data: one fixed loss surface (x_0, target); each seed "
                                f"draws {n_inits} starting points (w, b)"), scale(2, 0, ["none:one-unit-rnn"]))


def _descend(w0, b0, clip, threshold, eta, steps, T, x0, target):
    """Plain gradient descent from every start at once -> (largest step per run,
    losses (steps+1, n), gradient norms (steps, n))."""
    w, b = w0.clone(), b0.clone()
    losses, jump, norms = [], torch.zeros_like(w), []
    for _ in range(steps):
        w.requires_grad_(True), b.requires_grad_(True)
        loss = _rnn_loss(w, b, x0, T, target)
        gw, gb = torch.autograd.grad(loss.sum(), (w, b))
        g = torch.stack([gw, gb]).nan_to_num(0.0, 1e30, -1e30)
        norms.append(g.norm(dim=0))
        if clip:  # Algorithm 1: rescale g to the threshold when its norm exceeds it
            g = g * (threshold / g.norm(dim=0)).clamp(max=1.0)
        step = eta * g
        jump = torch.maximum(jump, step.norm(dim=0))
        losses.append(loss.detach())
        w, b = (w - step[0]).detach(), (b - step[1]).detach()
    losses.append(_rnn_loss(w, b, x0, T, target).detach())
    return jump, torch.stack(losses).nan_to_num(1e30), torch.stack(norms)


