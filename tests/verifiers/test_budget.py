"""Sizes from a FLOP budget: the ladder fits, spans what was asked, and grows with the budget."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from verifiers.lab.budget import fit_ladder, gpt_family, ladder_cost, scaled
from verifiers.lab.gpt import GPT

FAMILY = gpt_family(256, 64, 2, 4, 256)


def test_counts_match_a_built_model():
    """N is Kaplan's non-embedding count of the very model the stack would build."""
    for s in FAMILY[::9]:
        assert GPT(s.cfg).non_embedding_params() == s.N


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([16, 256]), st.integers(1, 3), st.sampled_from([1, 2, 4]), st.integers(5, 12),
       st.fixed_dictionaries({}, optional={"pos": st.sampled_from(["learned", "rope", "none"]),
                                           "norm": st.sampled_from(["pre", "post"]),
                                           "parallel": st.booleans(), "bias": st.booleans(),
                                           "tie_embeddings": st.booleans(),
                                           "n_kv_head": st.just(1), "d_ff": st.just(24)}))
def test_every_width_is_counted_as_built(V, layers, heads, n, switches):
    """The family's counts (a quadratic fitted through three widths) equal a build at every width."""
    for s in gpt_family(V, 16, layers, heads, heads * n, **switches):
        net = GPT(s.cfg)
        mats = sum(p.numel() for k, p in net.named_parameters() if p.dim() == 2 and k.startswith("blocks."))
        assert (s.N, s.N_matmul) == (net.non_embedding_params(), mats + s.cfg.d_model * V)


@settings(max_examples=25, deadline=None)
@given(st.floats(1e12, 1e15), st.integers(3, 6), st.sampled_from([1.0, 1.5, 2.0]),
       st.integers(1, 5))
def test_ladder_fits_the_budget_and_spans_the_decades(flops, n, span, runs):
    """Every ladder costs at most its budget and spans about `span` decades of N."""
    try:
        rungs = fit_ladder(flops, FAMILY, n, span, runs=runs, tokens_per_param=20)
    except ValueError:
        return  # too small a budget (or family) for this ladder: refused, not squeezed
    assert ladder_cost(rungs, runs) <= flops
    assert len(rungs) == n
    got = math.log10(rungs[-1].shape.N / rungs[0].shape.N)
    assert abs(got - span) < 0.35


def test_a_bigger_budget_trains_a_bigger_top_model():
    """Ten times the FLOPs gives a larger largest model (the same claim runs bigger)."""
    small = fit_ladder(1e13, FAMILY, 4, 1.5, runs=2, tokens_per_param=20)
    big = fit_ladder(scaled(1e13, 10), FAMILY, 4, 1.5, runs=2, tokens_per_param=20)
    assert big[-1].shape.N > small[-1].shape.N


def test_fixed_tokens_and_refusals():
    """A step-count ladder trains every rung on the same tokens; impossible asks are errors."""
    rungs = fit_ladder(1e13, FAMILY, 3, 1.0, tokens=1_000_000)
    assert {r.tokens for r in rungs} == {1_000_000}
    with pytest.raises(ValueError, match="cannot hold"):
        fit_ladder(1e6, FAMILY, 3, 1.0, tokens_per_param=20)
    with pytest.raises(ValueError, match="exactly one"):
        fit_ladder(1e13, FAMILY, 3, 1.0)
    with pytest.raises(ValueError, match="budget_scale"):
        scaled(1e13, 0)
