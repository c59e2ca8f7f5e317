"""Scaling-law formulas (Chinchilla frontier, Kaplan laws) and the scaling verifiers."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from principia.formulas import (
    FITS, HOFFMANN_TABLE3, approach1_optimum, chinchilla_compute_for_params, chinchilla_exponents,
    chinchilla_loss, chinchilla_optimum, kaplan_allocation_exponents, kaplan_alpha_C_min,
    kaplan_critical_batch, kaplan_loss_C, kaplan_loss_D, kaplan_loss_N, kaplan_loss_ND,
)
from verifiers import scaling
from tests.verifiers.claims import params

budgets = st.floats(min_value=1e15, max_value=1e29)
sizes = st.floats(min_value=1e6, max_value=1e14)
fits = st.sampled_from(sorted(FITS))
fast = settings(max_examples=60, deadline=None)

# Hoffmann et al. 2022, Table A3, Approach 3 columns: (parameters, FLOPs, tokens).
TABLE_A3_APPROACH3 = ((400e6, 2.21e19, 9.2e9), (1e9, 1.62e20, 27.1e9), (10e9, 2.46e22, 410.1e9),
                      (67e9, 1.71e24, 4.1e12), (280e9, 3.52e25, 20.1e12), (520e9, 1.36e26, 43.5e12),
                      (1e12, 5.65e26, 94.1e12), (10e12, 8.55e28, 1425.5e12))


# --- Chinchilla frontier: properties ----------------------------------------------------------

@fast
@given(C=budgets, fit=fits)
def test_optimum_spends_the_whole_budget(C, fit):
    """The compute-optimal N and D satisfy 6·N·D = C."""
    o = chinchilla_optimum(C, fit)
    assert math.isclose(6 * o["params"] * o["tokens"], C, rel_tol=1e-9)


@pytest.mark.parametrize("fit", sorted(FITS))
def test_frontier_exponents_sum_to_one(fit):
    """The exponents a and b of N_opt ∝ C^a and D_opt ∝ C^b add up to one."""
    a, b = chinchilla_exponents(fit)
    assert math.isclose(a + b, 1.0, rel_tol=1e-12)


@fast
@given(C=budgets, fit=fits)
def test_tokens_per_param_moves_with_the_sign_of_b_minus_a(C, fit):
    """D/N grows with C when b > a (Hoffmann's fits) and shrinks when b < a (the refit)."""
    a, b = chinchilla_exponents(fit)
    r1 = chinchilla_optimum(C, fit)["tokens_per_param"]
    r2 = chinchilla_optimum(10 * C, fit)["tokens_per_param"]
    assert (r2 - r1) * (b - a) > 0
    assert math.isclose(r2 / r1, 10 ** (b - a), rel_tol=1e-9)


@fast
@given(C=budgets, fit=fits, step=st.sampled_from([0.8, 0.95, 1.05, 1.25]))
def test_optimum_minimises_loss_on_its_isoflop_line(C, fit, step):
    """Moving N off N_opt along 6·N·D = C never lowers the fitted loss."""
    o = chinchilla_optimum(C, fit)
    N = o["params"] * step
    assert chinchilla_loss(N, C / (6 * N), fit) >= o["loss"] - 1e-12


@fast
@given(N=sizes, fit=fits)
def test_compute_for_params_inverts_the_frontier(N, fit):
    """The budget whose optimal size is N gives back N."""
    C = chinchilla_compute_for_params(N, fit)
    assert math.isclose(chinchilla_optimum(C, fit)["params"], N, rel_tol=1e-9)


@fast
@given(N=sizes, D=sizes, fit=fits)
def test_fitted_loss_falls_with_N_and_D_towards_E(N, D, fit):
    """L(N, D) decreases in both arguments and stays above the irreducible E."""
    f = FITS[fit]
    assert f.E < f.loss(2 * N, D) < f.loss(N, D)
    assert f.loss(N, 2 * D) < f.loss(N, D)
    assert chinchilla_loss(N, D, fit) == f.loss(N, D)


def test_unknown_fit_is_rejected():
    """Asking for a fit that does not exist names the ones that do."""
    with pytest.raises((KeyError, ValueError)):
        chinchilla_optimum(1e20, "kaplan")


# --- Chinchilla: published numbers ------------------------------------------------------------

def test_only_unrounded_fit_gives_40B_at_gophers_budget():
    """Fig. 4 caption: 40B parameters at 5.76e23 FLOPs, reproduced only by the unrounded fit."""
    assert chinchilla_optimum(5.76e23, "hoffmann-unrounded")["params"] == pytest.approx(40e9, rel=0.02)
    assert chinchilla_optimum(5.76e23, "hoffmann")["params"] == pytest.approx(32.2e9, rel=0.01)


def test_approach3_exponent_of_table_2_needs_unrounded_values():
    """Table 2 prints a = 0.46 for Approach 3; the printed (rounded) α, β give 0.45."""
    assert round(chinchilla_exponents("hoffmann-unrounded")[0], 2) == 0.46
    assert round(chinchilla_exponents("hoffmann")[0], 2) == 0.45


@pytest.mark.parametrize("N,C,D", TABLE_A3_APPROACH3)
def test_table_a3_approach3_reproduced_by_unrounded_fit(N, C, D):
    """Table A3 (Approach 3) is matched within 20% by the unrounded fit, not by the printed one."""
    assert chinchilla_compute_for_params(N, "hoffmann-unrounded") == pytest.approx(C, rel=0.20)
    assert chinchilla_compute_for_params(N, "hoffmann-unrounded") / (6 * N) == pytest.approx(D, rel=0.20)
    assert chinchilla_compute_for_params(N, "hoffmann") / C > 1.5


def test_table_3_rows_hold_about_twenty_tokens_per_parameter():
    """Every row of Hoffmann Table 3 (Approach 1) has 20-22 tokens per parameter."""
    assert all(19.9 <= d / n <= 22.4 for n, _, d in HOFFMANN_TABLE3)


def test_approach1_line_through_table_3():
    """A log-log line through Table 3 has slope ~0.5 and gives ~67B at Gopher's budget."""
    o = approach1_optimum(5.76e23)
    assert o["exponent_a"] == pytest.approx(0.50, abs=0.01)
    assert o["params"] == pytest.approx(67e9, rel=0.05)


def test_besiroglu_refit_gives_about_twenty_tokens_per_parameter():
    """The 2024 refit puts D/N near 20 at Chinchilla's budget."""
    assert chinchilla_optimum(5.76e23, "epoch")["tokens_per_param"] == pytest.approx(20, rel=0.15)


# --- Kaplan et al. 2020 -----------------------------------------------------------------------

@fast
@given(N=sizes)
def test_doubling_N_scales_kaplan_loss_by_two_to_minus_alpha(N):
    """L(2N)/L(N) = 2^-α_N for the single-variable law."""
    assert kaplan_loss_N(2 * N) / kaplan_loss_N(N) == pytest.approx(2 ** -0.076, rel=1e-12)


@fast
@given(D=sizes, C=st.floats(min_value=1e-6, max_value=1e6))
def test_kaplan_data_and_compute_laws_fall(D, C):
    """L(D) and L(C_min) decrease as their argument grows."""
    assert kaplan_loss_D(2 * D) < kaplan_loss_D(D)
    assert kaplan_loss_C(2 * C) < kaplan_loss_C(C)


@fast
@given(N=sizes)
def test_joint_law_tends_to_its_N_limit(N):
    """L(N, D) approaches (N_c/N)^α_N of its own constants as D grows without bound."""
    limit = (6.4e13 / N) ** 0.076
    assert kaplan_loss_ND(N, 1e40) == pytest.approx(limit, rel=1e-6)
    assert kaplan_loss_ND(N, 1e9) > limit


@fast
@given(L=st.floats(min_value=1.5, max_value=6.0))
def test_critical_batch_grows_as_loss_falls(L):
    """B_crit(L) = B_*/L^(1/α_B) is larger at lower loss."""
    assert kaplan_critical_batch(L * 0.9) > kaplan_critical_batch(L)


@fast
@given(aN=st.floats(0.01, 1), aB=st.floats(0.01, 1), aS=st.floats(0.01, 2))
def test_allocation_exponents_sum_to_one(aN, aB, aS):
    """With α_C from Eq. 1.8, the exponents of N, B and S add to one (C = 6·N·B·S)."""
    aC = kaplan_alpha_C_min(aS, aB, aN)
    e = kaplan_allocation_exponents(aC, aN, aB, aS)
    assert e["N"] + e["B"] + e["S"] == pytest.approx(1.0, rel=1e-9)
    assert aC < min(aN, aB, aS)


# --- verifiers --------------------------------------------------------------------------------

def test_loss_laws_verifier_measures_the_doubling_factor_and_the_alpha_D_gap():
    """The loss-laws verifier reports 2^-0.076 and the 0.095 vs 0.103 exponent gap."""
    m = scaling.kaplan_loss_laws(**params("kaplan-loss-laws")).measured
    assert m["loss_ratio_double_N"].value == pytest.approx(0.9487, abs=1e-4)
    assert m["alpha_D_gap"].value == pytest.approx(0.008)
    assert m["L_N_gap_max"].value == pytest.approx((8.8 / 6.4) ** 0.076 - 1, rel=1e-6)


def test_data_vs_params_exponent_depends_on_which_fit():
    """α_N/α_D is 0.74 with Table 2's α_D and 0.80 with Eq. 1.2's."""
    m = scaling.kaplan_data_vs_params(**params("kaplan-data-vs-params")).measured
    assert m["exponent_joint"].value == pytest.approx(0.738, abs=1e-3)
    assert m["exponent_single"].value == pytest.approx(0.800, abs=1e-9)
    assert m["data_factor_joint"].value == pytest.approx(8 ** 0.738, rel=1e-3)


def test_compute_allocation_from_eq_1_8():
    """Eq. 1.8 gives α_C^min ≈ 0.052 and Eq. 1.7 then N ∝ C^0.684, S ∝ C^0.068."""
    m = scaling.kaplan_compute_allocation(**params("kaplan-compute-allocation")).measured
    assert m["alpha_C_eq18"].value == pytest.approx(0.0520, abs=1e-4)
    assert m["N_exponent"].value == pytest.approx(0.684, abs=1e-3)
    assert m["S_exponent"].value == pytest.approx(0.068, abs=1e-3)
    assert m["exponent_sum"].value == pytest.approx(1.0)


def test_compute_optimal_tokens_separates_the_fits():
    """Over 1e18-1e25 FLOPs the refit stays near 20 tokens/param while the printed fit drifts to >100."""
    m = scaling.compute_optimal_tokens(**params("compute-optimal-tokens")).measured
    assert 0.8 < m["ratio_min_epoch"].value < m["ratio_max_epoch"].value < 1.35
    assert m["ratio_max_hoffmann"].value * 20 > 100
    assert m["params_at_gopher_hoffmann_unrounded"].value == pytest.approx(40e9, rel=0.02)


def test_llama_figures_are_token_counts():
    """20 × 6.7B and 20 × 13.0B are 134B and 260B tokens; LLaMA saw 1T, 7.5x and 3.8x more."""
    m = scaling.no_convergence_at_optimum(**params("no-convergence-at-optimum")).measured
    assert m["seed_13B_over_rule_N"].value == pytest.approx(1.0)
    assert m["seed_7B_as_params_over_N"].value == pytest.approx(140 / 6.7)
    assert m["llama_7B_tokens_over_rule_N"].value == pytest.approx(1000 / 134)
