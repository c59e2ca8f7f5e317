"""Exact architecture accounting on real torch GPTs: parameter counts, FLOP counts, and the
parallel (PaLM / GPT-J) block against the sequential one.

Counts use modules built on the ``meta`` device where size matters (shapes without storage, so a
1.5B-parameter GPT costs nothing) and torch's ``FlopCounterMode``, which counts 2 FLOPs per
multiply-accumulate of matmul-like ops only. On CPU the fused attention kernel is invisible to
the counter (it reports 0 FLOPs), so attention is counted through the math backend, whose
``bmm`` calls the counter sees.
"""
from __future__ import annotations

import math

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.formulas import gpt_params, kaplan_params
from principia.types import PosInt, Seeds
from verifiers.lab.batched import BatchedAdamW, lr_table, train
from verifiers.lab.data import MarkovSource
from verifiers.lab.feeds import markov_batches, member_eval
from verifiers.lab.gpt import GPT, Block, GPTConfig, lm_loss
from verifiers.lab.measure import clock, count_flops, flop_counter, one_thread
from verifiers.lab.stacks import GPTStack
from verifiers.lab.tuning import recorded, replication, scale

__all__ = [
    "kaplan_N", "kaplan_forward_flops", "count_flops", "FusedParallelBlock",
    "param_count_12ld2", "forward_flops", "parallel_layers",
]


def kaplan_N(n_layer: int, d_model: int) -> float:
    """N ≈ 2·d_model·n_layer·(2·d_attn + d_ff) = 12·n_layer·d_model² with d_attn = d_ff/4 =
    d_model (Kaplan et al. 2020, Table 1 and Eq. 2.1); the formula `principia calc params` uses."""
    return kaplan_params(n_layer, d_model)


def kaplan_forward_flops(N: float, n_layer: int, n_ctx: int, d_attn: int) -> float:
    """C_forward ≈ 2N + 2·n_layer·n_ctx·d_attn per token (Kaplan et al. 2020, Table 1, Eq. 2.2)."""
    return 2 * N + 2 * n_layer * n_ctx * d_attn


def _meta_gpt(**cfg) -> GPT:
    with torch.device("meta"):
        return GPT(GPTConfig(**cfg))


# --- param-count-12ld2 --------------------------------------------------------------------

def param_count_12ld2(shapes: list[list[PosInt]], head_size: PosInt) -> Evidence:
    """Non-embedding parameters of real GPTs against 12·n_layer·d_model²."""
    rows, errs, unexplained = [], [], []
    for L, d in shapes:
        model = _meta_gpt(vocab_size=64, n_ctx=64, n_layer=L, d_model=d,
                          n_head=max(1, d // head_size))
        N = model.non_embedding_params()
        approx = kaplan_N(L, d)
        # Left out by the approximation: 13·d of biases and LayerNorms per layer, 2·d at the end.
        small = gpt_params(L, d)["non_embedding"] - approx
        errs.append(N / approx - 1)
        unexplained.append(abs(N - approx - small))
        rows.append({"n_layer": L, "d_model": d, "N counted": N, "12·n_layer·d²": approx,
                     "rel. error": errs[-1], "13·d/(12·d²) + 1/(6·L·d)": small / approx})
    ds = [d for _, d in shapes]
    fig = Figure(title="Counted N over 12·n_layer·d_model²", xlabel="d_model", ylabel="relative error",
                 xscale="log", yscale="log",
                 series=[Series("counted (real GPT)", ds, errs, style="points"),
                         Series("13/(12·d) (biases and LayerNorms)", ds, [13 / (12 * d) for d in ds],
                                style="dashed")])
    return Evidence(
        measured={"max_rel_error": Measure(max(errs), note=f"over {len(shapes)} shapes"),
                  "unexplained_params": Measure(max(unexplained),
                                                note="counted − (12·L·d² + 13·L·d + 2·d), max over shapes")},
        figures=[fig], table=rows,
        notes=["Per layer a GPT block holds 12·d² matrix weights (Q, K, V, output: 4·d²; MLP: 8·d²) "
               "plus 13·d biases and LayerNorm gains and biases (q d, k/v 2d, proj d, fc 4d, "
               "fc-proj d, two LayerNorms 4d); the final LayerNorm adds 2·d. The relative error "
               "is therefore 13/(12·d) + 1/(6·n_layer·d) and vanishes as d grows."],
    )


# --- forward-flops ------------------------------------------------------------------------

def _attention_flops(n_head: int, T: int, hs: int, causal_prefix: bool) -> int:
    """Counted FLOPs of one layer's attention core (QKᵀ, softmax, AV) over T positions.

    causal_prefix=False: one causal kernel call, which computes the whole T×T score matrix.
    causal_prefix=True: query t against keys 0..t only, as decoding with a KV cache does.
    Zeros on CPU: cheap, and the count depends on shapes only."""
    q = torch.zeros(1, n_head, T, hs)
    k, v = torch.zeros_like(q), torch.zeros_like(q)
    with flop_counter() as c:
        if not causal_prefix:
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
        for t in range(T if causal_prefix else 0):
            F.scaled_dot_product_attention(q[:, :, t:t + 1], k[:, :, :t + 1], v[:, :, :t + 1])
    return int(c.get_total_flops())


def _flop_terms(n_layer: int, d_model: int, n_head: int, n_ctx: int, vocab_size: int) -> dict[str, float]:
    """Counted FLOPs of one sequence on a meta-device GPT, by term, with Kaplan's for comparison."""
    model = _meta_gpt(vocab_size=vocab_size, n_ctx=n_ctx, n_layer=n_layer, d_model=d_model, n_head=n_head)
    T, hs = n_ctx, d_model // n_head
    idx = torch.zeros(1, T, dtype=torch.long, device="meta")
    c = {"fwd": count_flops(model, idx)["total"], "train": count_flops(model, idx, backward=True)["total"],
         "head": count_flops(model.head, torch.zeros(1, T, d_model, device="meta"))["total"],
         "attn_dense": n_layer * _attention_flops(n_head, T, hs, causal_prefix=False),
         "attn_causal": n_layer * _attention_flops(n_head, T, hs, causal_prefix=True),
         "N": model.non_embedding_params(),              # the head is tied to the token embedding
         "kaplan_ctx": 2 * n_layer * n_ctx * d_model * T}  # Kaplan's context term, per sequence
    c["dense"] = c["fwd"] - c["head"] - c["attn_dense"]  # the blocks' linear layers
    c["kaplan"] = kaplan_forward_flops(c["N"], n_layer, n_ctx, d_model) * T
    return c


def forward_flops(n_layer: PosInt, d_model: PosInt, n_head: PosInt,
                  n_ctx: PosInt, vocab_size: PosInt, check_cpu: bool) -> Evidence:
    """Counted forward and forward+backward FLOPs of a real GPT against Kaplan's 2N + 2·L·n_ctx·d."""
    c, T = _flop_terms(n_layer, d_model, n_head, n_ctx, vocab_size), n_ctx
    m = {
        "dense_over_2N": Measure(c["dense"] / (2 * c["N"] * T), note="block matmuls / 2N per token"),
        "attention_dense_over_kaplan": Measure(c["attn_dense"] / c["kaplan_ctx"],
                                               note="full T×T kernel / 2·n_layer·n_ctx·d_model"),
        "attention_causal_over_kaplan": Measure(c["attn_causal"] / c["kaplan_ctx"], note="query t attends to t+1 keys"),
        "forward_over_kaplan": Measure((c["fwd"] - c["head"]) / c["kaplan"],
                                       note="counted forward without de-embedding, dense attention"),
        "deembed_share": Measure(c["head"] / c["fwd"], note="de-embedding matmul / counted forward"),
        "train_over_forward": Measure(c["train"] / c["fwd"], note="forward+backward / forward"),
    }
    rows = [{"term": term, "counted per token": c[k] / T, "Kaplan": kap}
            for term, k, kap in (("block matmuls", "dense", 2 * c["N"]),
                                 ("attention, dense kernel", "attn_dense", c["kaplan_ctx"] / T),
                                 ("attention, causal prefix (KV-cache order)", "attn_causal", c["kaplan_ctx"] / T),
                                 ("de-embedding (outside Kaplan's C_forward)", "head", 0),
                                 ("forward + backward", "train", 3 * c["kaplan"] / T))]
    notes = [f"N = {c['N']:,} non-embedding parameters. A dense attention kernel computes the whole "
             f"T×T score matrix: {m['attention_dense_over_kaplan'].value:.2f}× Kaplan's context term. Counting "
             f"only the unmasked half (each query t against t+1 keys) gives "
             f"{m['attention_causal_over_kaplan'].value:.4f}×: Kaplan's term is the causal work, QKᵀ and AV "
             "each over n_ctx/2 keys on average.",
             f"The de-embedding matmul (2·d·n_vocab per token) is {c['head'] / c['fwd']:.1%} of the counted "
             "forward here; Kaplan's C_forward leaves it out with the embeddings."]
    return Evidence(measured=m, table=rows, notes=notes + ([_cpu_cross_check()] if check_cpu else []))


def _cpu_cross_check() -> str:
    """The same count on a small real CPU model, to show meta and CPU agree."""
    cfg = dict(vocab_size=64, n_ctx=32, n_layer=2, d_model=32, n_head=4)
    torch.manual_seed(0)
    cpu, meta = GPT(GPTConfig(**cfg)), _meta_gpt(**cfg)
    a = count_flops(cpu, torch.zeros(1, 32, dtype=torch.long))["total"]
    b = count_flops(meta, torch.zeros(1, 32, dtype=torch.long, device="meta"))["total"]
    with FlopCounterMode(display=False) as c:  # the default CPU attention kernel
        cpu(torch.zeros(1, 32, dtype=torch.long))
    return (f"Cross-check on a small model: CPU {a:,} FLOPs, meta {b:,}; with CPU's default fused "
            f"attention the counter sees only {c.get_total_flops():,} (attention uncounted).")


# --- parallel-layers ----------------------------------------------------------------------

class FusedParallelBlock(nn.Module):
    """A parallel block with one input matmul (Q, K, V, MLP-in) and one output matmul
    (attention-out, MLP-out), as PaLM §2 describes; weights copied from a parallel Block."""

    def __init__(self, blk: Block):
        super().__init__()
        a, mlp = blk.attn, blk.mlp
        self.cfg, self.ln, self.hs = blk.cfg, blk.ln1, a.hs
        self.split = [a.q.out_features, a.kv.out_features, mlp.fc.out_features]
        with torch.no_grad():
            self.w_in = nn.Parameter(torch.cat([a.q.weight, a.kv.weight, mlp.fc.weight]))
            self.b_in = nn.Parameter(torch.cat([a.q.bias, a.kv.bias, mlp.fc.bias]))
            self.w_out = nn.Parameter(torch.cat([a.proj.weight, mlp.proj.weight], dim=1))
            self.b_out = nn.Parameter(a.proj.bias + mlp.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        h, g, hs = self.cfg.n_head, self.cfg.kv_heads, self.hs
        q, kv, u = F.linear(self.ln(x), self.w_in, self.b_in).split(self.split, dim=-1)
        q = q.view(B, T, h, hs).transpose(1, 2)                      # (B, h, T, hs)
        k, v = kv.view(B, T, 2, g, hs).permute(2, 0, 3, 1, 4)        # each (B, g, T, hs)
        if g != h:
            k, v = k.repeat_interleave(h // g, 1), v.repeat_interleave(h // g, 1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        return x + F.linear(torch.cat([y, F.gelu(u)], dim=-1), self.w_out, self.b_out)


def _step_seconds(block: nn.Module, x: torch.Tensor, iters: int, best_of: int = 1) -> float:
    """Seconds per forward+backward: the best of `best_of` timings of `iters` steps each."""
    now, best = clock(x.device.type), math.inf
    for _ in range(best_of):
        if x.is_cuda:
            torch.cuda.synchronize()
        t = now()
        for _ in range(iters):
            block(x).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        best = min(best, (now() - t) / iters)
    return best


def _block_speedups(d_model: int, n_head: int, T: int, batch: int, repeats: int, iters: int,
                     seed: int, device: str) -> tuple[list[float], float]:
    """Paired forward+backward time ratios, sequential block / fused parallel block."""
    torch.manual_seed(seed)
    cfg = GPTConfig(n_ctx=T, d_model=d_model, n_head=n_head)
    seq = Block(cfg).to(device)
    par = Block(GPTConfig(**{**cfg.__dict__, "parallel": True})).to(device)
    par.load_state_dict(seq.state_dict())
    fused = FusedParallelBlock(par).to(device)
    x = torch.randn(batch, T, d_model, device=device)
    with torch.no_grad():
        gap = float((fused(x) - par(x)).abs().max())
    for b in (seq, fused):
        _step_seconds(b, x, 1)  # warm-up
    ratios = []
    for r in range(repeats):
        order = (seq, fused) if r % 2 == 0 else (fused, seq)
        t = {id(b): _step_seconds(b, x, iters, best_of=3) for b in order}
        ratios.append(t[id(seq)] / t[id(fused)])
    return ratios, gap


def _flops_and_params(d_model: int, n_head: int, T: int) -> tuple[float, float]:
    """Counted forward FLOPs and trained parameters, parallel / sequential."""
    out = []
    for parallel in (False, True):
        torch.manual_seed(0)
        m = GPT(GPTConfig(vocab_size=64, n_ctx=T, n_layer=2, d_model=d_model, n_head=n_head,
                          parallel=parallel))
        idx = torch.zeros(1, T, dtype=torch.long)
        flops = count_flops(m, idx)["total"]
        lm_loss(m(idx), idx).backward()
        used = sum(p.numel() for p in m.parameters() if p.grad is not None)
        out.append((flops, used))
    return out[1][0] / out[0][0], out[1][1] / out[0][1]


def _quality(seeds: list[int], steps: int, d_model: int, n_layer: int, n_head: int, T: int,
             batch: int, V: int, order: int, device: str) -> dict:
    """Final losses and training curves of sequential and parallel GPTs, same init and data."""
    src = MarkovSource(V=V, order=order, alpha=0.2, seed=0)
    out: dict = {"final": {False: [], True: []}, "curve": {False: [], True: []}, "H": src.entropy}
    ev = torch.stack([src.sample(128, T + 1, np.random.default_rng(s + 20_000)) for s in seeds])
    K = len(seeds)
    for parallel in (False, True):
        # same init per seed: both shapes create the same parameters in the same order
        net = GPTStack(GPTConfig(vocab_size=V, n_ctx=T, n_layer=n_layer, d_model=d_model,
                                 n_head=n_head, parallel=parallel), seeds, device)
        # AdamW β = (0.9, 0.95), no decay, cosine from 3e-3 to zero; one data stream per seed
        tr = train(net, BatchedAdamW(net, (0.9, 0.95)), markov_batches(src, seeds, batch, T, False, device),
                   lr_table([3e-3] * K, [steps] * K, "cosine"), [steps] * K, [0.0] * K)
        out["final"][parallel] = member_eval(net, src, ev[..., :-1].to(device)).tolist()
        out["curve"][parallel] = tr.array("loss").T.tolist()
    out["gaps"] = [(p - q) / q for p, q in zip(out["final"][True], out["final"][False])]
    return out


def parallel_layers(d_model: PosInt, n_head: PosInt, T: PosInt, batch: PosInt,
                    repeats: PosInt, iters: PosInt, seeds: Seeds,
                    steps: PosInt, train_d_model: PosInt, train_layers: PosInt,
                    train_T: PosInt, train_batch: PosInt, V: PosInt, order: PosInt,
                    device: str = "cpu") -> Evidence:
    """Parallel vs sequential blocks: FLOPs and parameters by count, time of the fused form,
    and final loss of tiny GPTs trained from the same init and data."""
    flops_ratio, param_ratio = _flops_and_params(64, 4, 32)
    with one_thread(device):  # the timing, and tiny GPTs that a second CPU thread only slows (20× under load)
        ratios, gap = _block_speedups(d_model, n_head, T, batch, repeats, iters, seeds[0], device)
        q = _quality(seeds, steps, train_d_model, train_layers, 4, train_T, train_batch, V, order, device)
    m = {
        "flops_ratio": Measure(flops_ratio, note="counted forward FLOPs, parallel / sequential"),
        "param_ratio": Measure(param_ratio, note="parameters that receive gradients"),
        "speedup": interval_from_samples(ratios, note=f"sequential / fused-parallel fwd+bwd time, "
                                                      f"d = {d_model}, {batch}×{T} tokens"),
        "loss_gap_rel": interval_from_samples(q["gaps"], note="(parallel − sequential) / sequential "
                                                              "final loss, paired by seed"),
    }
    mean = lambda curves: [sum(v) / len(v) for v in zip(*curves)]  # noqa: E731
    x = list(range(1, steps + 1))
    fig = Figure(title="Training loss, sequential vs parallel blocks (mean over seeds)",
                 xlabel="step", ylabel="training loss (nats)",
                 series=[Series("sequential", x, mean(q["curve"][False])),
                         Series("parallel", x, mean(q["curve"][True])),
                         Series("entropy of the source", x, [q["H"]] * steps, style="dashed")],
                 caption=f"{train_layers}-layer GPT, d = {train_d_model}, {len(seeds)} seeds, AdamW, "
                         f"{train_batch}×{train_T} tokens per step from an order-{order} Markov source; "
                         f"final expected losses {[round(v, 4) for v in q['final'][False]]} "
                         f"(sequential) and {[round(v, 4) for v in q['final'][True]]} (parallel).")
    return recorded(Evidence(
        measured=m, figures=[fig], seeds=list(seeds),
        notes=[f"The fused block reproduces the parallel block to {gap:.1e}. The parallel block "
               "leaves its second LayerNorm unused, so it trains 2·d fewer parameters per layer.",
               f"Timed on {device} ({'CPU time, one thread' if device == 'cpu' else 'wall time'}); "
               f"one block, {repeats} paired repeats of {iters} steps each, each the best of 3."]),
        *_parallel_record(d_model, repeats, seeds, steps, train_d_model, train_layers, train_T, train_batch, V, order))


def _parallel_record(d_model, repeats, seeds, steps, d, L, T, B, V, order) -> tuple[dict, dict]:
    """Replication and scale: seeded streams of one fixed Markov source; the larger of the timed
    block and the trained GPT."""
    block = 12 * d_model ** 2 + 13 * d_model  # one sequential block: weights, biases, 2 LayerNorms
    return (replication(len(seeds), 1, f"one fixed order-{order} Markov source; each seed draws its own "
                                       "token stream and initialisation (both arms share them); the "
                                       f"speed is {repeats} paired timing repeats of one block"),
            scale(max(block, gpt_params(L, d, V, T)["params"]), steps * B * T, [f"markov:V{V}-order{order}"]))
