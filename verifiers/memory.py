"""Memory of model states and what optimizers keep: bytes of real torch tensors.

Everything is counted on real objects after a real step: parameters, gradients, the tensors in
``optimizer.state`` and the activations autograd saves for the backward pass. Bytes are
``numel · element_size`` of distinct storages (verifiers.lab.measure).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, Literal

import torch
import torch.nn as nn

from principia.evidence import Evidence, Figure, Measure, Series
from principia.types import PosInt
from verifiers.lab.gpt import GPT, lm_loss
from verifiers.lab.measure import GB, one_step, small_gpt, state_bytes, tensor_bytes, saved_activation_bytes

__all__ = ["fp32_weights_bytes", "adafactor_formula_bytes", "training_state_bytes", "adafactor_state_bytes"]



def fp32_weights_bytes(N: PosInt, probe: PosInt) -> Evidence:
    """Bytes of N fp32 parameters, from a real tensor of `probe` parameters scaled up."""
    t = torch.empty(probe, dtype=torch.float32)
    per_param = t.element_size() * t.numel() / probe  # bytes actually held per parameter
    total_gb = per_param * N / GB
    return Evidence(
        measured={
            "bytes_per_param": Measure(per_param, unit="B"),
            "weights_gb": Measure(total_gb, unit="GB", note=f"{N:.3g} parameters"),
        },
        table=[{"dtype": "float32", "element_size": t.element_size(), "N": N,
                "GiB": per_param * N / 2**30}],
        notes=[f"{N:.3g} fp32 parameters take {per_param * N / 2**30:.3f} GiB (binary units)."],
    )


# --- training-memory-6x ---------------------------------------------------------------------

def _activations(model: GPT, B: int, seed: int) -> int:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.cfg.vocab_size, (B, model.cfg.n_ctx + 1), generator=g)
    x = x.to(next(model.parameters()).device)
    return saved_activation_bytes(model, lambda: lm_loss(model(x[:, :-1]), x[:, 1:]))


def _state_per_param(model: GPT, opt: torch.optim.Optimizer) -> dict[str, float]:
    """Bytes per parameter of weights, gradients, each optimizer-state key and their total."""
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    st = {k: v / n for k, v in state_bytes(opt).items()}
    w, gr = tensor_bytes(params) / n, tensor_bytes(p.grad for p in params) / n
    return {"n": n, "weights": w, "grads": gr, "state": st,  # 'step' counters included (4 B per tensor)
            "moments": st.get("exp_avg", 0) + st.get("exp_avg_sq", 0), "total": w + gr + sum(st.values())}


def _memory_figure(s: dict, act: dict[int, float], caption: str) -> Figure:
    batches = sorted(act)
    return Figure(title="Training memory per parameter", xlabel="batch (sequences)", ylabel="bytes / parameter",
                  series=[Series("model states + activations (measured)", batches,
                                 [s["total"] + act[B] for B in batches], style="points"),
                          Series("model states (weights, grads, optimizer)", batches, [s["total"]] * len(batches),
                                 style="dashed"),
                          Series("the notes' 24 B/param", batches, [24] * len(batches), style="dashed")],
                  caption=caption)


def training_state_bytes(N: PosInt, n_layer: PosInt, d_model: PosInt, n_head: PosInt, n_ctx: PosInt,
                         vocab_size: PosInt, B_small: PosInt, B_large: PosInt, seed: int,
                         optimizer: Literal["adam", "sgd"], device: str = "cpu") -> Evidence:
    """Bytes per parameter of fp32 weights, gradients and optimizer state after one real step,
    and of the activations saved at two batch sizes."""
    model = small_gpt(seed, device, vocab_size=vocab_size, n_ctx=n_ctx, n_layer=n_layer, d_model=d_model,
                      n_head=n_head)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=1e-3)
    one_step(model, opt, B_small, seed)
    s = _state_per_param(model, opt)
    act = {B: _activations(model, B, seed) / s["n"] for B in sorted({B_small, (B_small + B_large) // 2, B_large})}
    m = {
        "weight_bytes_per_param": Measure(s["weights"], unit="B"),
        "grad_bytes_per_param": Measure(s["grads"], unit="B"),
        "adam_bytes_per_param": Measure(s["moments"], unit="B", note="exp_avg + exp_avg_sq"),
        "model_state_bytes_per_param": Measure(s["total"], unit="B", note=f"weights+grads+{optimizer} state"),
        "extra_bytes_per_param": Measure(s["total"] - s["weights"], unit="B", note="beyond the weights"),
        "state_multiple_of_weights": Measure(s["total"] / s["weights"]),
        "training_gb": Measure(s["total"] * N / GB, unit="GB", note=f"model states of {N:.3g} params"),
        "activation_bytes_per_param_small_batch": Measure(act[B_small], unit="B", note=f"B = {B_small}"),
        "activation_bytes_per_param_large_batch": Measure(act[B_large], unit="B", note=f"B = {B_large}"),
        "activation_batch_scaling": Measure((act[B_large] / act[B_small]) / (B_large / B_small),
                                            note=f"activation ratio B = {B_large} vs {B_small}, over the batch ratio"),
    }
    rows = [{"part": "weights (fp32)", "B/param": s["weights"]}, {"part": "gradients (fp32)", "B/param": s["grads"]}]
    rows += [{"part": f"{optimizer} state '{k}'", "B/param": v} for k, v in s["state"].items()]
    rows += [{"part": f"saved activations, batch {B}×{n_ctx}", "B/param": a} for B, a in act.items()]
    fig = _memory_figure(s, act, f"{n_layer}-layer GPT, d_model {d_model}, context {n_ctx}, fp32, {optimizer}.")
    return Evidence(measured=m, figures=[fig], table=rows, seeds=[seed], notes=[
        f"Per parameter: {s['weights']:g} B weights + {s['grads']:g} B gradients + {s['moments']:g} B moments = "
        f"{s['total']:.3f} B, {s['total'] / s['weights']:.2f}× the weights ({s['total'] * N / GB:.1f} GB for "
        f"{N:.3g} params). The source's 6× (24 B/param) would need another {24 - s['total']:.1f} B/param from "
        "activations and temporaries, which scale with batch × context × layers, not with the parameter "
        f"count: here {act[B_small]:.2f} to {act[B_large]:.2f} B/param between batch {B_small} and {B_large}."])


# --- adafactor-memory -----------------------------------------------------------------------

def adafactor_formula_bytes(shapes: Iterable[torch.Size], itemsize: int = 4) -> int:
    """Factored second moments (Shazeer & Stern 2018 §3): rows + cols per matrix, the full
    vector otherwise, plus one step counter per tensor; leading dims of >2-D tensors multiply."""
    total = 0
    for s in shapes:
        if len(s) >= 2:
            lead = int(torch.Size(s[:-2]).numel())
            total += lead * (s[-2] + s[-1]) * itemsize
        else:
            total += int(torch.Size(s).numel()) * itemsize
        total += itemsize  # the 'step' counter
    return total


def _opt_bytes(make: Callable, seed: int, **cfg) -> tuple[int, int, list[torch.Size]]:
    model = small_gpt(seed, **cfg)
    opt = make(model.parameters())
    one_step(model, opt, 2, seed)
    params = list(model.parameters())
    return sum(state_bytes(opt).values()), sum(p.numel() for p in params), [p.shape for p in params]


def adafactor_state_bytes(n_layer: PosInt, d_model: PosInt, n_head: PosInt,
                          vocab_size: PosInt, n_ctx: PosInt,
                          widths: list[PosInt], seed: int, formula_itemsize: PosInt) -> Evidence:
    """Optimizer-state bytes of torch Adam and Adafactor on the same GPT after one step."""
    adam, adaf = partial(torch.optim.Adam, lr=1e-3), partial(torch.optim.Adafactor, lr=1e-2)
    curve = []
    for d in sorted(set(widths + [d_model])):
        cfg = dict(vocab_size=vocab_size, n_ctx=n_ctx, n_layer=n_layer, d_model=d, n_head=n_head)
        a, n, shapes = _opt_bytes(adam, seed, **cfg)
        f, _, _ = _opt_bytes(adaf, seed, **cfg)
        curve.append((d, n, a, f, adafactor_formula_bytes(shapes, formula_itemsize)))
    d, n, a, f, formula = next(c for c in curve if c[0] == d_model)
    m = {
        "adam_state_bytes_per_param": Measure(a / n, unit="B"),
        "adafactor_state_bytes_per_param": Measure(f / n, unit="B"),
        "adafactor_over_adam": Measure(f / a),
        "adafactor_over_formula": Measure(f / formula, note="measured / factored formula"),
    }
    fig = Figure(title="Optimizer state per parameter", xlabel="d_model", ylabel="bytes / parameter",
                 xscale="log", yscale="log",
                 series=[Series("Adam (measured)", [c[0] for c in curve], [c[2] / c[1] for c in curve],
                                style="points"),
                         Series("Adafactor (measured)", [c[0] for c in curve],
                                [c[3] / c[1] for c in curve], style="points"),
                         Series("Adafactor (rows + cols formula)", [c[0] for c in curve],
                                [c[4] / c[1] for c in curve], style="dashed")],
                 caption=f"{n_layer}-layer GPT, vocabulary {vocab_size}, one step each.")
    rows = [{"d_model": c[0], "params": c[1], "Adam bytes": c[2], "Adafactor bytes": c[3],
             "formula bytes": c[4]} for c in curve]
    return Evidence(
        measured=m, figures=[fig], table=rows, seeds=[seed],
        notes=[f"Adam keeps {a / n:.2f} B/param (two fp32 moments); torch's Adafactor keeps "
               f"{f / n:.3f} B/param: a row and a column vector per matrix, full vectors for "
               "biases and norms, and no first moment (momentum off, as Shazeer & Stern run it)."],
    )
