"""Bytes of real model states, optimizer states and KV caches; weight decay against L2."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import inference, memory, regularisation
from verifiers.lab.measure import state_bytes, tensor_bytes
from verifiers.memory import adafactor_formula_bytes
from tests.verifiers.claims import params

fast = settings(max_examples=40, deadline=None)
dims = st.integers(min_value=1, max_value=64)


def test_fp32_weights_take_four_bytes_each():
    """One billion fp32 parameters take 4 GB (the existing claim keeps working)."""
    m = memory.fp32_weights_bytes(**params("fp32-weights-memory", probe=1000)).measured
    assert m["bytes_per_param"].value == 4 and m["weights_gb"].value == 4


def test_tensor_bytes_counts_shared_storage_once():
    """A tensor and a view of it hold one storage, counted once."""
    t = torch.zeros(10, 10)
    assert tensor_bytes([t, t[2:], t.T]) == 400


def test_adam_keeps_two_fp32_moments_per_parameter():
    """After one step Adam's exp_avg and exp_avg_sq each hold 4 bytes per parameter."""
    p = torch.nn.Parameter(torch.randn(7, 5))
    opt = torch.optim.Adam([p])
    p.grad = torch.ones_like(p)
    opt.step()
    st_ = state_bytes(opt)
    assert st_["exp_avg"] == st_["exp_avg_sq"] == 4 * 35


def test_training_states_are_sixteen_bytes_per_parameter():
    """Weights, gradients and Adam moments of a real GPT add up to 4 + 4 + 8 bytes per parameter."""
    m = memory.training_state_bytes(**params("training-memory-6x", n_layer=1, d_model=32, n_ctx=16, vocab_size=64)).measured
    assert m["weight_bytes_per_param"].value == 4
    assert m["grad_bytes_per_param"].value == 4
    assert m["adam_bytes_per_param"].value == 8
    assert m["model_state_bytes_per_param"].value == pytest.approx(16, rel=1e-3)
    assert m["training_gb"].value == pytest.approx(16, rel=1e-3)


def test_activations_grow_with_the_batch():
    """Saved activations at batch 4 are four times those at batch 1."""
    m = memory.training_state_bytes(**params("training-memory-6x", n_layer=1, d_model=32, n_ctx=16, vocab_size=64,
                                    B_small=1, B_large=4)).measured
    assert m["activation_batch_scaling"].value == pytest.approx(1, rel=0.01)


@fast
@given(n=dims, m=dims)
def test_adafactor_formula_is_rows_plus_cols(n, m):
    """A matrix costs (n + m) fp32 numbers plus a step counter; a vector its length plus one."""
    assert adafactor_formula_bytes([torch.Size([n, m])]) == 4 * (n + m + 1)
    assert adafactor_formula_bytes([torch.Size([n])]) == 4 * (n + 1)


@fast
@given(n=st.integers(2, 40), m=st.integers(2, 40))
def test_torch_adafactor_matches_the_factored_formula(n, m):
    """torch.optim.Adafactor's state for an n×m matrix is exactly the factored formula."""
    p = torch.nn.Parameter(torch.randn(n, m))
    opt = torch.optim.Adafactor([p])
    p.grad = torch.randn(n, m)
    opt.step()
    assert sum(state_bytes(opt).values()) == adafactor_formula_bytes([p.shape])


def test_adafactor_state_is_a_small_fraction_of_adam():
    """On a real GPT Adafactor keeps under 2% of Adam's optimizer state."""
    m = memory.adafactor_state_bytes(**params("adafactor-memory", d_model=128, vocab_size=128)).measured
    assert m["adafactor_over_formula"].value == 1
    assert m["adafactor_over_adam"].value < 0.02


@pytest.mark.parametrize("h,g", [(8, 1), (8, 2), (4, 4), (12, 3)])
def test_kv_cache_shrinks_by_heads_over_groups(h, g):
    """The K/V cache of h query heads with g K/V heads is g/h of multi-head attention's."""
    m = inference.kv_cache_bytes(**params("multi-query-attention", n_head=h, gqa_groups=g, n_layer=1, d_model=16 * h, n_ctx=8)).measured
    assert m["mha_over_mqa"].value == h
    assert m["mha_over_gqa"].value == h / g
    assert m["formula_mismatch_bytes"].value == 0


@pytest.fixture(scope="module")
def decay():
    return regularisation.weight_decay_vs_l2(**params("weight-decay", steps=3, n_layer=1, d_model=16)).measured


def test_sgd_l2_and_decoupled_decay_coincide(decay):
    """Under plain SGD, L2 in the gradient and decoupled decay give the same weights."""
    assert decay["sgd_decay_rel_diff"].value < 1e-9
    assert decay["sgd_decay_cosine"].value == pytest.approx(1, abs=1e-9)


def test_adam_l2_and_adamw_decay_point_different_ways(decay):
    """Under Adam the L2 term's effect and AdamW's decay are far from parallel."""
    assert decay["adam_decay_cosine"].value < 0.9
