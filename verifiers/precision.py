"""Number formats on real dtypes: bit layouts, ranges, rounding, int8 absmax quantisation and
the matmul speed of bf16 against fp32 on the device that runs the check.

Bit widths are read off real bit patterns (−0, +inf, the largest finite value), not from a
table, so the claims test torch's dtypes themselves. Layouts: IEEE 754-2019 Table 3.5 (binary16:
p = 11, emax = 15; binary32: p = 24, emax = 127); bfloat16 keeps binary32's 8 exponent bits and
7 fraction bits (Kalamkar et al. 2019 §2).
"""
from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from statistics import median
from typing import Literal

import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import Pos, PosInt

from verifiers.lab.measure import _sync, clock, device_name, one_thread
from verifiers.lab.tuning import recorded, replication, scale

__all__ = [
    "DTYPES", "format_bits", "correct_decimals", "decimals_shown", "max_exact_integer",
    "fp16_format", "bf16_format", "bf16_matmul_speed",
]

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
          "float64": torch.float64}
FloatName = Literal["float16", "bfloat16", "float32", "float64"]
_UINT_VIEW = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(x: float, dtype: torch.dtype) -> int:
    """The raw bit pattern of x stored in dtype, as a non-negative int."""
    t = torch.tensor([x], dtype=dtype)
    n = t.element_size()
    return int(t.view(_UINT_VIEW[n]).item()) & ((1 << 8 * n) - 1)


def format_bits(dtype: torch.dtype) -> dict[str, int]:
    """Sign, exponent and fraction widths, counted from set bits of real encodings."""
    total = 8 * torch.tensor([], dtype=dtype).element_size()
    sign = bin(_bits(-0.0, dtype)).count("1")             # −0: only the sign bit is set
    exponent = bin(_bits(math.inf, dtype)).count("1")     # +inf: all exponent bits, no fraction
    fmax = float(torch.finfo(dtype).max)                  # exponent 11…10, fraction all ones
    fraction = bin(_bits(fmax, dtype)).count("1") - (exponent - 1)
    return {"total": total, "sign": sign, "exponent": exponent, "fraction": fraction}


def correct_decimals(x: float, ref: float, limit: int = 20) -> int:
    """Largest d with |x − ref| ≤ ½·10^−d: the decimal places x gets right."""
    err = abs(x - ref)
    d = 0
    while d < limit and err <= 0.5 * 10.0 ** -(d + 1):
        d += 1
    return d


def decimals_shown(x: float) -> int:
    """Digits after the point in the exact decimal expansion of a binary float."""
    return max(0, -Decimal(x).as_tuple().exponent)


def max_exact_integer(dtype: torch.dtype, limit: int = 64) -> int:
    """Largest n such that every integer 0..n is stored exactly (2^p for a p-bit significand)."""
    for k in range(1, limit):
        n = 2 ** k + 1
        if float(torch.tensor(float(n), dtype=torch.float64).to(dtype)) != n:
            return 2 ** k
    return 2 ** limit


def _range_row(name: str) -> dict:
    dt = DTYPES[name]
    fi, b = torch.finfo(dt), format_bits(dt)
    return {"dtype": name, "bytes": fi.bits // 8, "sign": b["sign"], "exponent": b["exponent"],
            "fraction": b["fraction"], "max": float(fi.max), "smallest normal": float(fi.tiny),
            "eps": float(fi.eps), "π stored": float(torch.tensor(math.pi, dtype=dt)),
            "exact integers up to": max_exact_integer(dt)}


def fp16_format(dtype: FloatName) -> Evidence:
    """Layout, range and π of a 16-bit float, read from a real torch dtype."""
    dt = DTYPES[dtype]
    b, fi = format_bits(dt), torch.finfo(dt)
    pi = float(torch.tensor(math.pi, dtype=torch.float32).to(dt))  # fp32 π projected down
    pi32 = float(torch.tensor(math.pi, dtype=torch.float32))
    m = {
        "sign_bits": Measure(b["sign"], unit="bit"),
        "exponent_bits": Measure(b["exponent"], unit="bit"),
        "fraction_bits": Measure(b["fraction"], unit="bit"),
        "max_value": Measure(float(fi.max)),
        "min_value": Measure(float(fi.min)),
        "bytes_per_value": Measure(fi.bits // 8, unit="B"),
        "pi_stored": Measure(pi, note=f"fp32 π = {pi32!r} cast to {dtype}"),
        "pi_decimals_shown": Measure(decimals_shown(pi), note="digits in the exact decimal expansion"),
        "pi_correct_decimals": Measure(correct_decimals(pi, math.pi),
                                       note="largest d with |x − π| ≤ ½·10^−d"),
        "pi_abs_error": Measure(abs(pi - math.pi)),
    }
    return Evidence(
        measured=m,
        table=[_range_row(n) for n in ("float32", "float16", "bfloat16")],
        notes=[f"π in {dtype} is {pi!r}: its exact expansion has {decimals_shown(pi)} digits after "
               f"the point but only {correct_decimals(pi, math.pi)} of them agree with π; a "
               f"{b['fraction'] + 1}-bit significand carries about "
               f"{(b['fraction'] + 1) * math.log10(2):.1f} significant decimal digits."],
    )


def bf16_format(dtype: FloatName, reference: FloatName) -> Evidence:
    """Exponent/fraction widths, range and precision of a 16-bit float against fp32."""
    dt, ref = DTYPES[dtype], DTYPES[reference]
    b, br = format_bits(dt), format_bits(ref)
    fi, fr, half = torch.finfo(dt), torch.finfo(ref), torch.finfo(torch.float16)
    m = {
        "exponent_bits": Measure(b["exponent"], unit="bit"),
        "exponent_bits_reference": Measure(br["exponent"], unit="bit"),
        "fraction_bits": Measure(b["fraction"], unit="bit"),
        "eps": Measure(float(fi.eps), note="gap from 1 to the next value: 2^−fraction_bits"),
        "max_ratio_to_fp32": Measure(float(fi.max) / float(fr.max)),
        "tiny_ratio_to_fp32": Measure(float(fi.tiny) / float(fr.tiny),
                                      note="smallest normal numbers compared"),
        "decades_of_range": Measure(math.log10(float(fi.max) / float(fi.tiny))),
        "bytes_per_value": Measure(fi.bits // 8, unit="B"),
        "max_exact_integer": Measure(max_exact_integer(dt)),
    }
    return Evidence(
        measured=m,
        table=[_range_row(n) for n in ("float32", "float16", "bfloat16")],
        notes=[f"{dtype} spans {m['decades_of_range'].value:.1f} decades of normal numbers "
               f"({reference}: {math.log10(float(fr.max) / float(fr.tiny)):.1f}); float16 spans "
               f"{math.log10(float(half.max) / float(half.tiny)):.1f}.",
               f"Every integer is exact only up to {max_exact_integer(dt)} in {dtype} "
               f"({max_exact_integer(ref)} in {reference})."],
    )


# --- bf16 matmul throughput ---------------------------------------------------------------

def _seconds(a: torch.Tensor, b: torch.Tensor, calls: int, device: str, best_of: int = 1) -> float:
    """Seconds per product: the best of `best_of` timings of `calls` products each (the best
    timing is the one least disturbed by other processes)."""
    now, best = clock(device), math.inf
    for _ in range(best_of):
        _sync(device)
        t = now()
        for _ in range(calls):
            a @ b
        _sync(device)
        best = min(best, (now() - t) / calls)
    return best


def _calls_for(a: torch.Tensor, b: torch.Tensor, device: str, min_s: float) -> int:
    """Products per timing so that one timing lasts at least min_s (after a warm-up call)."""
    _seconds(a, b, 1, device)
    calls = 1
    while _seconds(a, b, calls, device) * calls < min_s and calls < 1 << 16:
        calls *= 2
    return calls


def _speedups(n: int, dtype: torch.dtype, repeats: int, seed: int, device: str,
              min_s: float) -> tuple[list[float], float, float]:
    """Paired fp32/dtype time ratios over repeats, and the median GFLOP/s of each."""
    g = torch.Generator().manual_seed(seed)
    a32 = torch.randn(n, n, generator=g).to(device)
    b32 = torch.randn(n, n, generator=g).to(device)
    a16, b16 = a32.to(dtype), b32.to(dtype)
    calls = _calls_for(a32, b32, device, min_s)
    _seconds(a16, b16, 1, device)
    ratios, t32s, t16s = [], [], []
    for r in range(repeats):  # alternate the order so drift hits both dtypes alike
        pair = [(a32, b32), (a16, b16)] if r % 2 == 0 else [(a16, b16), (a32, b32)]
        t = {x.dtype: _seconds(x, y, calls, device, best_of=3) for x, y in pair}
        t32s.append(t[torch.float32])
        t16s.append(t[dtype])
        ratios.append(t[torch.float32] / t[dtype])
    flop = 2 * n ** 3  # n² outputs, n multiply-adds each
    return ratios, flop / median(t32s) / 1e9, flop / median(t16s) / 1e9


# Flags and compute capabilities that give a device 16-bit matrix units: x86 AVX512-BF16 / AMX
# (Intel ISA reference, cpuid leaf 7) and NVIDIA tensor cores (fp16 from sm_70, bf16 from sm_80).
_CPU_UNITS = {torch.bfloat16: {"avx512_bf16", "amx_bf16"}, torch.float16: {"avx512_fp16", "amx_fp16"}}
_CUDA_MIN_CC = {torch.bfloat16: (8, 0), torch.float16: (7, 0)}


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((set(l.split(":", 1)[1].split()) for l in f if l.startswith("flags")), set())
    except OSError:
        return set()


def no_native_units(dt: torch.dtype, device: str) -> str:
    """Why this device cannot test a 16-bit speedup ('' when it can): it has no matrix units
    taking that dtype, so a timing would measure software emulation, not the principle."""
    if dt not in _CPU_UNITS:
        return ""  # fp32/fp64 run natively everywhere: a timing is a fair test
    if device.startswith("cuda"):
        cc = torch.cuda.get_device_capability(torch.device(device))
        return "" if cc >= _CUDA_MIN_CC[dt] else f"GPU compute capability {cc} has no {dt} tensor cores"
    if _cpu_flags() & _CPU_UNITS[dt]:
        return ""
    return (f"this CPU has no {dt} matrix instructions ({'/'.join(sorted(_CPU_UNITS[dt]))} not in "
            "its flags), so torch emulates them in software")


def _bytes_ratio(dt: torch.dtype, n: int) -> Measure:
    """Bytes a 16-bit operand takes against the same fp32 matrix, read off real tensors."""
    a32 = torch.zeros(n, n)
    a = a32.to(dt)
    return Measure(a.untyped_storage().nbytes() / a32.untyped_storage().nbytes(),
                   note=f"storage bytes of an {n}×{n} {dt} tensor over fp32")


def bf16_matmul_speed(sizes: list[PosInt], repeats: PosInt, seed: int,
                      min_time_s: Pos, dtype: FloatName,
                      device: str = "cpu") -> Evidence:
    """Square-matmul throughput of a 16-bit dtype against fp32 on this device (paired repeats),
    and the bytes it saves. Without 16-bit matrix units the speedup is marked untestable."""
    dt = DTYPES[dtype]
    rows, m, g32, g16 = [], {}, [], []
    for n in sizes:
        with one_thread(device):
            ratios, gf32, gf16 = _speedups(n, dt, repeats, seed, device, min_time_s)
        m[f"speedup_{n}"] = interval_from_samples(ratios, note=f"fp32 time / {dtype} time, n = {n}")
        g32.append(gf32)
        g16.append(gf16)
        rows.append({"n": n, "fp32 GFLOP/s": round(gf32, 1), f"{dtype} GFLOP/s": round(gf16, 1),
                     "speedup": round(m[f"speedup_{n}"].value, 3)})
    with one_thread(device):
        where = device_name(device)
    why_not = no_native_units(dt, device)
    m["speedup"] = replace(m[f"speedup_{sizes[-1]}"], note=f"n = {sizes[-1]} on {where}",
                           untestable=why_not)
    m["bytes_ratio"] = _bytes_ratio(dt, sizes[-1])
    fig = Figure(title=f"Matmul throughput on {where}", xlabel="n (square matrices)",
                 ylabel="GFLOP/s", xscale="log",
                 series=[Series("float32", sizes, g32, style="points"),
                         Series(dtype, sizes, g16, style="points")],
                 caption=f"Median of {repeats} paired timings per size (each the best of 3); "
                         "2n³ FLOPs per product; CPU time on a CPU, wall time on a GPU.")
    return recorded(Evidence(measured=m, figures=[fig], table=rows, seeds=[seed], notes=[
        f"Device: {where}. The speedup describes this device only: it needs hardware with "
        "16-bit matrix units (tensor cores, AMX or AVX512-BF16).",
        ("Speedup not testable here: " + why_not + f"; the measured ratio "
         f"{m['speedup'].value:.3g} is shown but does not enter the verdict.") if why_not else
        "This device has matrix units for the dtype: the timing tests the claim.",
        "Measured: bytes per element on real tensors and paired timings. No formula values."]),
        *_timing_record(sizes, repeats, seed))


def _timing_record(sizes: list[int], repeats: int, seed: int) -> tuple[dict, dict]:
    """Replication and scale of the timing: one fixed pair of matrices per size, paired repeats."""
    return (replication(1, 0, f"a timing on this device, not a trained model: one fixed pair of "
                              f"Gaussian matrices per size (seed {seed}), {repeats} paired repeats "
                              "(fp32 and 16-bit alternating), each the best of 3"),
            scale(max(sizes) ** 2, 0, [f"gaussian-matrices:n{max(sizes)}"]))
