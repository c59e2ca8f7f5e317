"""Inference memory: the K/V cache a decoder keeps per token, with MHA, GQA and MQA attention.

Counted on the tensors a real forward pass caches (verifiers.lab.gpt), as distinct storages.
"""
from __future__ import annotations

import torch

from principia.evidence import Evidence, Figure, Measure, Series
from principia.types import PosInt
from verifiers.lab.gpt import GPTConfig
from verifiers.lab.measure import small_gpt, tensor_bytes

__all__ = ["kv_cache_bytes"]


def _cache_bytes(cfg: GPTConfig, batch: int, seed: int) -> tuple[int, int]:
    """(storage bytes, logical bytes) of the K/V tensors a forward pass caches."""
    model = small_gpt(seed, **cfg.__dict__)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, cfg.vocab_size, (batch, cfg.n_ctx), generator=g)
    cache: list = []
    with torch.no_grad():
        model(idx, cache)
    kv = [t for pair in cache for t in pair]
    return tensor_bytes(kv), sum(t.numel() * t.element_size() for t in kv)


def kv_cache_bytes(n_head: PosInt, gqa_groups: PosInt, n_layer: PosInt,
                   d_model: PosInt, n_ctx: PosInt, batch: PosInt,
                   seed: int) -> Evidence:
    """K/V-cache bytes of real attention modules with n_head, gqa_groups and 1 K/V heads."""
    base = dict(vocab_size=64, n_ctx=n_ctx, n_layer=n_layer, d_model=d_model, n_head=n_head)
    hs = d_model // n_head
    per_token, rows = {}, []
    for name, g in (("MHA", n_head), ("GQA", gqa_groups), ("MQA", 1)):
        stored, logical = _cache_bytes(GPTConfig(**base, n_kv_head=g), batch, seed)
        per_token[name] = stored / (batch * n_ctx)
        formula = 2 * n_layer * g * hs * 4  # K and V, per layer, g heads of size hs, fp32
        rows.append({"attention": name, "K/V heads": g, "bytes/token": per_token[name],
                     "logical bytes/token": logical / (batch * n_ctx), "2·L·g·hs·4": formula})
    m = {
        "mha_over_mqa": Measure(per_token["MHA"] / per_token["MQA"]),
        "mha_over_gqa": Measure(per_token["MHA"] / per_token["GQA"]),
        "mha_bytes_per_token": Measure(per_token["MHA"], unit="B"),
        "mqa_bytes_per_token": Measure(per_token["MQA"], unit="B"),
        "formula_mismatch_bytes": Measure(max(abs(r["bytes/token"] - r["2·L·g·hs·4"]) for r in rows),
                                          unit="B", note="max over MHA, GQA, MQA"),
    }
    gs = [r["K/V heads"] for r in rows]
    fig = Figure(title="KV cache per token", xlabel="K/V heads", ylabel="bytes / token",
                 xscale="log", yscale="log",
                 series=[Series("measured", gs, [r["bytes/token"] for r in rows], style="points"),
                         Series("2·n_layer·g·d_head·4", gs, [r["2·L·g·hs·4"] for r in rows],
                                style="dashed")],
                 caption=f"{n_head} query heads, d_model {d_model}, {n_layer} layers, fp32.")
    return Evidence(
        measured=m, table=rows, figures=[fig], seeds=[seed],
        notes=[f"Cached K/V per token: {per_token['MHA']:.0f} B with {n_head} K/V heads, "
               f"{per_token['GQA']:.0f} B with {gqa_groups}, {per_token['MQA']:.0f} B with one. "
               "Queries keep all heads, so only the cache (and the K/V projections) shrink."],
    )
