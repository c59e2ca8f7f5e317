"""Number formats read off real dtypes, absmax int8 quantisation, and the matmul speed probe."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from verifiers import precision, quantization
from verifiers.quantization import absmax_dequantize, absmax_quantize
from verifiers.precision import (
    correct_decimals, decimals_shown, format_bits,
    max_exact_integer,
)
from tests.verifiers.claims import params

fast = settings(max_examples=80, deadline=None)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


# --- layouts: IEEE 754-2019 Table 3.5 and bfloat16 -------------------------------------------

@pytest.mark.parametrize("dtype,layout", [
    (torch.float16, (1, 5, 10)), (torch.bfloat16, (1, 8, 7)),
    (torch.float32, (1, 8, 23)), (torch.float64, (1, 11, 52)),
])
def test_bit_layouts_reproduce_the_published_widths(dtype, layout):
    """Sign, exponent and fraction widths read from bit patterns match IEEE 754 Table 3.5 and bf16."""
    b = format_bits(dtype)
    assert (b["sign"], b["exponent"], b["fraction"]) == layout
    assert sum(layout) == b["total"]


def test_fp16_largest_value_is_65504():
    """binary16's largest finite value is (2 − 2^−10)·2^15 = 65504."""
    assert float(torch.finfo(torch.float16).max) == (2 - 2 ** -10) * 2 ** 15 == 65504


def test_pi_in_fp16_is_3_140625():
    """fp32 π cast to fp16 is 3.140625 in torch and in numpy."""
    import numpy as np
    assert float(torch.tensor(math.pi).half()) == 3.140625
    assert float(np.float16(np.float32(np.pi))) == 3.140625


def test_correct_decimals_counts_agreeing_places():
    """3.140625 agrees with π to two decimal places, 3.1416 to four."""
    assert correct_decimals(3.140625, math.pi) == 2
    assert correct_decimals(3.1416, math.pi) == 4
    assert decimals_shown(3.140625) == 6


@pytest.mark.parametrize("dtype,n", [(torch.bfloat16, 256), (torch.float16, 2048),
                                     (torch.float32, 2 ** 24)])
def test_exact_integers_end_at_two_to_the_significand(dtype, n):
    """Every integer is exact up to 2^p for a p-bit significand, and n + 1 is not."""
    assert max_exact_integer(dtype) == n


def test_fp16_verifier_finds_only_two_correct_decimals():
    """The fp16 verifier measures the layout, the range and π's two correct decimals."""
    m = precision.fp16_format(**params("fp16-format")).measured
    assert (m["sign_bits"].value, m["exponent_bits"].value, m["fraction_bits"].value) == (1, 5, 10)
    assert m["max_value"].value == 65504 and m["pi_stored"].value == 3.140625
    assert m["pi_decimals_shown"].value == 6 and m["pi_correct_decimals"].value == 2


def test_bf16_keeps_fp32_range_and_not_its_precision():
    """bf16's smallest normal equals fp32's; its eps is 2^-7."""
    m = precision.bf16_format(**params("bf16-format")).measured
    assert m["tiny_ratio_to_fp32"].value == 1
    assert m["max_ratio_to_fp32"].value == pytest.approx(1, rel=0.005)
    assert m["eps"].value == 2 ** -7


def test_fp16_range_is_not_fp32_range():
    """Measured as if it were bf16, fp16 misses fp32's range by 34 decades."""
    m = precision.bf16_format(**params("bf16-format", dtype="float16")).measured
    assert m["exponent_bits"].value == 5
    assert m["max_ratio_to_fp32"].value < 1e-30


# --- int8 absmax (Dettmers et al. 2022 §2.1) --------------------------------------------------

@fast
@given(arrays("float32", st.integers(1, 200), elements=finite))
def test_absmax_round_trip_error_is_at_most_half_a_step(x):
    """|x − dq(q(x))| ≤ Δ/2 with Δ = max|x|/127, up to fp32 rounding."""
    t = torch.from_numpy(x)
    q, step = absmax_quantize(t)
    err = (t.double() - absmax_dequantize(q, step).double()).abs().max()
    assert float(err) <= 1.0001 * float(step) / 2 + 1e-30


@fast
@given(arrays("float32", st.integers(1, 200), elements=finite))
def test_absmax_codes_stay_within_int8(x):
    """Codes are int8 in −127..127, and the largest magnitude maps to ±127."""
    q, _ = absmax_quantize(torch.from_numpy(x))
    assert q.dtype == torch.int8 and int(q.abs().max()) <= 127
    if abs(x).max() > 0:
        assert int(q.abs().max()) == 127


def test_pi_cast_without_scale_is_3():
    """π cast to int8 with no scale is 3, and with its own absmax scale it comes back intact."""
    assert int(torch.tensor(math.pi).to(torch.int8)) == 3
    q, step = absmax_quantize(torch.tensor([math.pi]))
    assert int(q) == 127
    assert float(absmax_dequantize(q, step)) == pytest.approx(math.pi, rel=1e-6)


def test_int8_verifier_measures_one_gigabyte_per_billion():
    """One billion int8 values take 1 GB and the bound holds on every test tensor."""
    m = quantization.int8_quantization(**params("int8-quantization", trials=4)).measured
    assert m["weights_gb"].value == 1.0
    assert (m["int8_min"].value, m["int8_max"].value) == (-128, 127)
    assert m["error_over_half_step"].value <= 1.0001


def test_an_outlier_widens_everyone_s_step():
    """One value of 100 in a tensor makes π's round-trip error larger than without it."""
    m = quantization.int8_quantization(**params("int8-quantization", trials=1)).measured
    assert m["pi_absmax_alone_abs_error"].value < 1e-6
    assert m["pi_absmax_in_gaussian_abs_error"].value < 0.034 / 2 + 1e-6


# --- matmul speed probe -------------------------------------------------------------------

def test_speed_probe_reports_a_paired_interval():
    """The speed probe returns a ratio with a 95% interval and names the device."""
    ev = precision.bf16_matmul_speed(**params("bf16-speed", sizes=[64], repeats=3, min_time_s=0.001))
    s = ev.measured["speedup"]
    assert s.lo is not None and s.lo <= s.value <= s.hi and s.n == 3
    assert "Device:" in ev.notes[0]
    assert ev.replication["data_draws"] == 1 and ev.replication["seeds"] == 0
    assert "3 paired repeats" in ev.replication["reason"]
    assert ev.scale == {"max_params": 64 * 64, "max_tokens": 0, "data": ["gaussian-matrices:n64"]}


def test_float64_is_slower_than_float32_on_cpu():
    """On one CPU thread a float64 matmul is slower than a float32 one (the falsifier's premise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ev = precision.bf16_matmul_speed(**params("bf16-speed", sizes=[512], repeats=5, dtype="float64"))
    finally:
        torch.set_num_threads(threads)
    assert ev.measured["speedup"].value < 1


def test_a_16bit_speedup_is_untestable_without_matrix_units(monkeypatch):
    """Without bf16 flags a CPU cannot test a bf16 speedup; fp64 is always testable."""
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2"})
    assert "no torch.bfloat16 matrix instructions" in precision.no_native_units(torch.bfloat16, "cpu")
    assert precision.no_native_units(torch.float64, "cpu") == ""
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert precision.no_native_units(torch.bfloat16, "cpu") == ""


def test_bf16_takes_half_the_bytes_of_fp32():
    """A bf16 matrix's storage is half the same fp32 matrix's, read off real tensors."""
    assert precision._bytes_ratio(torch.bfloat16, 64).value == 0.5
