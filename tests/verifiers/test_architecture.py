"""Parameter and FLOP counts of real GPTs, and the parallel block against the sequential one."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import architecture
from verifiers.architecture import (
    FusedParallelBlock, kaplan_forward_flops, kaplan_N,
)
from verifiers.lab.gpt import GPT, Block, GPTConfig
from verifiers.lab.measure import count_flops
from tests.verifiers.claims import params

fast = settings(max_examples=10, deadline=None)


def _meta(**cfg) -> GPT:
    with torch.device("meta"):
        return GPT(GPTConfig(**cfg))


@fast
@given(L=st.integers(1, 4), h=st.integers(1, 8), hs=st.sampled_from([4, 8, 16]))
def test_counted_params_are_12ld2_plus_13ld_plus_2d(L, h, hs):
    """A real GPT's non-embedding count is exactly 12·L·d² + 13·L·d + 2·d."""
    d = h * hs
    N = _meta(n_layer=L, d_model=d, n_head=h).non_embedding_params()
    assert N == kaplan_N(L, d) + 13 * L * d + 2 * d


def test_gpt2_shapes_are_within_a_fifth_of_a_percent():
    """For GPT-2's four shapes (Radford et al. Table 2) 12·L·d² is within 0.15% of the count."""
    m = architecture.param_count_12ld2(**params("param-count-12ld2")).measured
    assert m["max_rel_error"].value < 0.0015
    assert m["unexplained_params"].value == 0


def test_gpt2_small_non_embedding_count():
    """GPT-2 small (12 layers, d 768) has 85,056,000 non-embedding parameters."""
    assert _meta(n_layer=12, d_model=768, n_head=12).non_embedding_params() == 85_056_000


def test_kaplan_forward_flops_formula():
    """C_forward = 2N + 2·n_layer·n_ctx·d_attn (Kaplan et al. Table 1)."""
    assert kaplan_forward_flops(100.0, 2, 10, 4) == 2 * 100 + 2 * 2 * 10 * 4


def test_linear_layer_counts_two_flops_per_multiply_add():
    """FlopCounterMode counts a (B, d_in) × (d_in, d_out) product as 2·B·d_in·d_out."""
    lin = torch.nn.Linear(8, 16)
    assert count_flops(lin, torch.zeros(5, 8))["total"] == 2 * 5 * 8 * 16


def test_meta_and_cpu_counts_agree():
    """The same GPT counted on meta and on CPU gives the same FLOPs."""
    cfg = dict(vocab_size=32, n_ctx=16, n_layer=2, d_model=32, n_head=4)
    cpu = GPT(GPTConfig(**cfg))
    a = count_flops(cpu, torch.zeros(1, 16, dtype=torch.long))["total"]
    b = count_flops(_meta(**cfg), torch.zeros(1, 16, dtype=torch.long, device="meta"))["total"]
    assert a == b


@pytest.fixture(scope="module")
def flops():
    return architecture.forward_flops(**params("forward-flops", n_layer=2, d_model=128, n_head=4, n_ctx=64,
                                      vocab_size=64, check_cpu=False)).measured


def test_training_counts_three_forward_passes(flops):
    """Forward plus backward counts exactly three times the forward's matmul FLOPs."""
    assert flops["train_over_forward"].value == pytest.approx(3, rel=1e-9)


def test_dense_attention_counts_twice_kaplans_term(flops):
    """A dense kernel's QKᵀ and AV are 2× Kaplan's context term; the causal part is (T+1)/T of it."""
    assert flops["attention_dense_over_kaplan"].value == pytest.approx(2, rel=1e-12)
    assert flops["attention_causal_over_kaplan"].value == pytest.approx(65 / 64, rel=1e-12)


def test_block_matmuls_are_2N_less_the_biases(flops):
    """Block matmul FLOPs per token are 2·12·L·d², i.e. 2N without the 13·L·d bias terms."""
    N = kaplan_N(2, 128) + 13 * 2 * 128 + 2 * 128
    assert flops["dense_over_2N"].value == pytest.approx(kaplan_N(2, 128) / N, rel=1e-12)


def test_fused_parallel_block_reproduces_the_parallel_block():
    """One input and one output matmul compute what the parallel block computes."""
    torch.manual_seed(0)
    blk = Block(GPTConfig(n_ctx=16, d_model=32, n_head=4, parallel=True))
    x = torch.randn(2, 16, 32)
    with torch.no_grad():
        assert torch.allclose(FusedParallelBlock(blk)(x), blk(x), atol=1e-5)


def test_fused_block_handles_grouped_kv_heads():
    """The fused block also reproduces a parallel block with 2 K/V heads for 4 query heads."""
    torch.manual_seed(0)
    blk = Block(GPTConfig(n_ctx=8, d_model=32, n_head=4, n_kv_head=2, parallel=True))
    x = torch.randn(1, 8, 32)
    with torch.no_grad():
        assert torch.allclose(FusedParallelBlock(blk)(x), blk(x), atol=1e-5)


def test_parallel_and_sequential_blocks_count_the_same_flops():
    """Parallel and sequential GPTs count equal FLOPs; the parallel one trains 2·d fewer params per layer."""
    f, p = architecture._flops_and_params(32, 4, 16)
    assert f == 1
    n_seq = GPT(GPTConfig(vocab_size=64, n_ctx=16, n_layer=2, d_model=32, n_head=4)).parameters()
    n = sum(q.numel() for q in n_seq)
    assert p == pytest.approx((n - 2 * 2 * 32) / n, rel=1e-12)


def test_parallel_layers_reports_streams_and_the_larger_model():
    """One stream per seed; the scale is the larger of the timed block and the trained GPT."""
    ev = architecture.parallel_layers(**params("parallel-layers", d_model=16, T=8, batch=2, repeats=2, seeds=[0, 1],
                                               steps=2, train_d_model=8, train_layers=1, train_T=4, train_batch=2, V=8))
    assert (ev.replication["data_draws"], ev.replication["seeds"]) == (2, 1)
    assert "2 paired timing repeats" in ev.replication["reason"]
    assert ev.scale["max_params"] == max(12 * 16 ** 2 + 13 * 16, 12 * 64 + 13 * 8 + 16 + 12 * 8)
    assert ev.scale["max_tokens"] == 2 * 2 * 4 and ev.scale["data"] == ["markov:V8-order1"]
