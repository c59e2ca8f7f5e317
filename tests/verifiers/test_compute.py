"""Compute and memory formulas (6·N·D, PF-days, ZeRO, model-state bytes) and the compute verifiers."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from principia.formulas import (
    PF_DAY, PRECISIONS, OPTIMIZERS, pf_days, training_flops, training_memory, zero_bytes_per_gpu,
)
from verifiers import compute
from tests.verifiers.claims import params

counts = st.floats(min_value=1.0, max_value=1e15)
gpus = st.integers(min_value=1, max_value=4096)
fast = settings(max_examples=60, deadline=None)


# --- 6·N·D and PF-days ------------------------------------------------------------------------

@fast
@given(N=counts, D=counts, s=st.floats(min_value=0.1, max_value=100))
def test_training_flops_is_linear_in_N_and_D(N, D, s):
    """Scaling N or D by s scales C = 6·N·D by s."""
    C = training_flops(N, D)
    assert training_flops(s * N, D) == pytest.approx(s * C, rel=1e-12)
    assert training_flops(N, s * D) == pytest.approx(s * C, rel=1e-12)
    assert C == pytest.approx(6 * N * D, rel=1e-12)


def test_one_pf_day_is_8_64e19_flops():
    """A PF-day is 10^15 FLOP/s for 86,400 s."""
    assert PF_DAY == 8.64e19
    assert pf_days(8.64e19) == 1.0


@pytest.mark.parametrize("bad", [(0, 1), (1, -1), (-5, 3)])
def test_training_flops_rejects_non_positive_sizes(bad):
    """Zero or negative N or D is an error, not a number."""
    with pytest.raises(ValueError):
        training_flops(*bad)


@pytest.mark.parametrize("name,N,D,pfd,flops", compute.TABLE_D1)
def test_gpt3_table_d1_row_reproduced(name, N, D, pfd, flops):
    """Each row of Brown et al. Table D.1 follows from k·N·D (k = 3 for T5, 6 otherwise)."""
    k = 3 if name.startswith("T5") else 6
    assert training_flops(N, D, k) == pytest.approx(flops, rel=0.01)
    assert pf_days(training_flops(N, D, k)) == pytest.approx(pfd, rel=0.01)


# --- ZeRO (Rajbhandari et al. 2019) -----------------------------------------------------------

@fast
@given(N=counts, K=gpus)
def test_zero_memory_falls_with_each_stage(N, K):
    """Each ZeRO stage holds no more bytes per GPU than the one before, strictly less when K > 1."""
    b = [zero_bytes_per_gpu(N, K, s) for s in range(4)]
    assert all(x >= y for x, y in zip(b, b[1:]))
    if K > 1:
        assert all(x > y for x, y in zip(b, b[1:]))


@fast
@given(N=counts, K=gpus)
def test_zero_stage_0_and_3_closed_forms(N, K):
    """Stage 0 holds 16N bytes (k = 12) and stage 3 holds 16N/K."""
    assert zero_bytes_per_gpu(N, K, 0) == pytest.approx(16 * N, rel=1e-12)
    assert zero_bytes_per_gpu(N, K, 3) == pytest.approx(16 * N / K, rel=1e-12)


def test_zero_figure_1_reproduced():
    """Fig. 1 of the ZeRO paper: 7.5B parameters on 64 GPUs, k = 12 -> 120, 31.4, 16.6, 1.9 GB."""
    gb = [zero_bytes_per_gpu(7.5e9, 64, s) / 1e9 for s in range(4)]
    assert gb == pytest.approx([120, 31.4, 16.6, 1.9], abs=0.05)


def test_zero_rejects_unknown_stage():
    """Stage 4 does not exist."""
    with pytest.raises(ValueError):
        zero_bytes_per_gpu(1e9, 8, 4)


# --- model-state memory -----------------------------------------------------------------------

@fast
@given(N=counts, precision=st.sampled_from(PRECISIONS), optimizer=st.sampled_from(OPTIMIZERS))
def test_memory_parts_add_up(N, precision, optimizer):
    """Weights, gradients and optimizer state sum to the total, per parameter and in bytes."""
    m = training_memory(N, precision, optimizer)
    per = m["bytes_per_param"]
    assert per["total"] == per["weights"] + per["grads"] + per["optimizer"]
    assert m["total"] == pytest.approx(per["total"] * N, rel=1e-12)


@pytest.mark.parametrize("precision,optimizer,total", [
    ("fp32", "adam", 16), ("bf16-mixed", "adam", 16), ("fp32", "sgd", 12), ("fp32", "adafactor", 8),
])
def test_memory_bytes_per_parameter(precision, optimizer, total):
    """fp32 Adam and bf16-mixed Adam both hold 16 bytes per parameter; SGD 12; Adafactor ~8."""
    assert training_memory(1e9, precision, optimizer)["bytes_per_param"]["total"] == total


def test_memory_rejects_unknown_precision():
    """An unknown precision is named in the error."""
    with pytest.raises(ValueError, match="fp8"):
        training_memory(1e9, "fp8")


# --- verifiers --------------------------------------------------------------------------------

def test_training_compute_matches_the_notes_round_figures():
    """GPT-3 175B takes 3,637 PF-days and T5-3B 104 PF-days by k·N·D."""
    m = compute.training_compute(**params("training-compute")).measured
    assert m["gpt3_175b_pf_days"].value == pytest.approx(3637.5, rel=1e-3)
    assert m["t5_3b_pf_days"].value == pytest.approx(104.17, rel=1e-3)
    assert m["table_d1_max_rel_err"].value < 0.01


def test_counting_t5_at_six_flops_doubles_its_compute():
    """With 6 FLOPs per parameter-token T5-3B would need ~208 PF-days, twice the table."""
    m = compute.training_compute(**params("training-compute", k_t5=6.0)).measured
    assert m["t5_3b_pf_days"].value == pytest.approx(208.3, rel=1e-3)
    assert m["table_d1_max_rel_err"].value > 0.9


def test_two_a100_give_62_percent_of_eight_v100():
    """At dense Tensor-Core peaks, 2 x 312 TFLOP/s is 0.624 of 8 x 125 TFLOP/s."""
    m = compute.petaflop_day(**params("petaflop-day")).measured
    assert m["pf_day_flops"].value == 8.64e19
    assert m["v100_group_pflops"].value == pytest.approx(1.0)
    assert m["a100_group_over_v100_group"].value == pytest.approx(0.624)


def test_large_models_of_2020_22_hold_under_four_tokens_per_parameter():
    """GPT-3, Jurassic-1, Gopher, MT-NLG, LaMDA, OPT and PaLM all have D/N < 4."""
    m = compute.under_trained_models(**params("under-trained-models")).measured
    assert m["max_ratio_large"].value * 20 < 4
    assert m["n_under_large"].value == 7
    assert m["seed_lamda_over_published"].value > 5


def test_bloomberggpt_against_approach_1():
    """BloombergGPT is 1.16x Approach 1's optimal size with 0.63x its optimal tokens."""
    m = compute.bloomberggpt_budget(**params("bloomberggpt-budget")).measured
    assert m["size_ratio_approach1"].value == pytest.approx(1.16, abs=0.02)
    assert m["data_ratio_approach1"].value == pytest.approx(0.63, abs=0.02)
    assert m["C_over_6ND"].value == pytest.approx(2.36e23 / (6 * 50.6e9 * 569e9))


def test_model_table_tokens_per_parameter():
    """Chinchilla sits at 20 tokens per parameter and GPT-3 at 1.7."""
    N, D, _ = compute.MODELS["Chinchilla"]
    assert D / N == 20
    N, D, _ = compute.MODELS["GPT-3"]
    assert math.isclose(D / N, 300 / 175)
