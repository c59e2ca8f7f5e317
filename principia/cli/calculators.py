"""`principia calc`: the published formulas as a calculator.

    principia calc flops --params 175e9 --tokens 300e9
    principia calc chinchilla --compute 5.76e23 --fit hoffmann-unrounded
    principia calc zero --params 7.5B --gpus 64 --stage 3
    principia calc memory --params 1B --precision bf16-mixed --optimizer adam --json
    principia calc params --layers 12 --d-model 768 --vocab 50257 --ctx 1024

Numbers accept a suffix: K (1e3), M (1e6), B or G (1e9), T (1e12). Bad input exits with code 2
and a message naming the argument, what was expected and what arrived.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable

from ..formulas import (
    FITS, OPTIMIZERS, PRECISIONS, ZERO_STAGES, ChinchillaFit, chinchilla_optimum, gpt_params,
    pf_days, training_flops, training_memory, zero_bytes_per_gpu,
)

__all__ = ["add_parser", "run", "main", "parse_number", "calc_flops", "calc_chinchilla",
           "calc_zero", "calc_memory", "calc_params"]

_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_number(text: str) -> float:
    """'7e9', '7B' or '1.4T' -> float; raises ValueError naming what arrived."""
    s = text.strip()
    scale = _SUFFIX.get(s[-1:].upper(), 1.0) if s else 1.0
    body = s[:-1] if scale != 1.0 else s
    try:
        x = float(body) * scale
    except ValueError:
        raise ValueError(f"expected a number such as 7e9 or 7B (got {text!r})") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite number (got {text!r})")
    return x


def _positive(text: str) -> float:
    try:
        x = parse_number(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be positive (got {text!r})")
    return x


def _positive_int(text: str) -> int:
    x = _positive(text)
    if x != int(x):
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})")
    return int(x)


def _count(text: str) -> int:
    """A whole number >= 0 (sizes of tables that may be left out)."""
    try:
        x = parse_number(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if x < 0 or x != int(x):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0 (got {text!r})")
    return int(x)


# Below these an argument is almost surely missing its suffix (175 for 175B).
_PLAUSIBLE = {"params": 1e4, "tokens": 1e4, "compute": 1e12}


def _warn_implausible(args: argparse.Namespace) -> None:
    for name, low in _PLAUSIBLE.items():
        x = getattr(args, name, None)
        if isinstance(x, float) and x < low:
            print(f"warning: --{name} {x:g} is very small; did you forget a suffix "
                  f"(K, M, B, T: e.g. {x:g}B)?", file=sys.stderr)


def _finite(payload: Any) -> bool:
    if isinstance(payload, dict):
        return all(_finite(v) for v in payload.values())
    return not isinstance(payload, float) or math.isfinite(payload)


# --- the four calculations: plain functions returning the JSON payload ------------------------

def calc_flops(N: float, D: float, k: float = 6.0) -> dict[str, float]:
    """C = k·N·D and the same in PF-days (Kaplan §2.1; Brown et al. App. D)."""
    C = training_flops(N, D, k)
    return {"flops": C, "pf_days": pf_days(C)}


# The fit that reproduces Hoffmann et al.'s own result (40B parameters at Gopher's 5.76e23 FLOPs,
# Fig. 4 caption); Eq. 10's rounded constants give 32B there.
DEFAULT_FIT = "hoffmann-unrounded"
ROUNDED_WARNING = ("Eq. 10's rounded constants do not reproduce the paper's own optimum "
                   "(32B instead of 40B parameters at Gopher's budget); hoffmann-unrounded does")


def calc_chinchilla(C: float, fit: str = DEFAULT_FIT, **override: float | None) -> dict[str, Any]:
    """Compute-optimal N, D (Hoffmann Eq. 4) for a named fit, optionally overriding E/A/B/α/β.

    The payload names the fit it used (and its source), and warns when that is the rounded one."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {sorted(FITS)} (got {fit!r})")
    base = FITS[fit]
    given = {k: v for k, v in override.items() if v is not None}
    unknown = set(given) - {"E", "A", "B", "alpha", "beta"}
    if unknown:
        raise ValueError(f"unknown fit parameter(s) {sorted(unknown)}")
    bad = [k for k, v in given.items() if not v > 0]
    if bad:
        raise ValueError(f"fit parameters must be positive (got {', '.join(f'{k}={given[k]}' for k in bad)})")
    f = base if not given else ChinchillaFit(
        "custom", **{k: given.get(k, getattr(base, k)) for k in ("E", "A", "B", "alpha", "beta")},
        source=f"{base.source}, with {', '.join(sorted(given))} given")
    opt = chinchilla_optimum(C, f)
    out: dict[str, Any] = {k: opt[k] for k in ("params", "tokens", "tokens_per_param")}
    out.update(fit=f.name if given else fit, fit_source=f.source)
    if fit == "hoffmann":
        out["warning"] = ROUNDED_WARNING
    return out


def calc_zero(N: float, K: int, stage: int, k: float = 12.0) -> dict[str, float]:
    """Model-state bytes per GPU under ZeRO stage 0-3 (Rajbhandari et al. 2019, Fig. 1)."""
    return {"bytes_per_gpu": zero_bytes_per_gpu(N, K, stage, k)}


def calc_memory(N: float, precision: str = "fp32", optimizer: str = "adam") -> dict[str, Any]:
    """Bytes per parameter and in total of weights, gradients and optimizer state."""
    return training_memory(N, precision, optimizer)


def calc_params(n_layer: int, d_model: int, vocab: int = 0, n_ctx: int = 0) -> dict[str, int]:
    """A GPT's parameters from the formula the claim 'param-count-12ld2' verifies."""
    return gpt_params(n_layer, d_model, vocab, n_ctx)


# --- command line -----------------------------------------------------------------------------

def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1e4 and abs(x) < 1e15 else f"{x:.4g}"


def _table(rows: list[tuple[str, str]]) -> str:
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def _show_flops(a: argparse.Namespace) -> tuple[dict[str, Any], str]:
    r = calc_flops(a.params, a.tokens, a.flops_per_param_token)
    return r, _table([("flops", f"{r['flops']:.4g}"), ("pf_days", f"{r['pf_days']:,.2f}")])


def _show_chinchilla(a: argparse.Namespace) -> tuple[dict[str, Any], str]:
    r = calc_chinchilla(a.compute, a.fit, E=a.E, A=a.A, B=a.B, alpha=a.alpha, beta=a.beta)
    rows = [("fit", f"{r['fit']} ({r['fit_source']})"), ("params", f"{r['params']:.4g}"),
            ("tokens", f"{r['tokens']:.4g}"), ("tokens_per_param", f"{r['tokens_per_param']:.2f}")]
    return r, _table(rows + ([("warning", r["warning"])] if "warning" in r else []))


def _show_zero(a: argparse.Namespace) -> tuple[dict[str, Any], str]:
    r = calc_zero(a.params, a.gpus, a.stage, a.k)
    b = r["bytes_per_gpu"]
    return r, _table([("bytes_per_gpu", _fmt(b)), ("GB (1e9)", f"{b / 1e9:.3f}"),
                      ("GiB (2^30)", f"{b / 2 ** 30:.3f}")])


def _show_memory(a: argparse.Namespace) -> tuple[dict[str, Any], str]:
    r = calc_memory(a.params, a.precision, a.optimizer)
    per = r["bytes_per_param"]
    rows = [("part", "bytes/param   total bytes      GB")]
    rows += [(k, f"{per[k]:>11g}   {r[k]:>14.4g}   {r[k] / 1e9:>7.3f}")
             for k in ("weights", "grads", "optimizer", "total")]
    return r, _table(rows)


def _show_params(a: argparse.Namespace) -> tuple[dict[str, Any], str]:
    r = calc_params(a.layers, a.d_model, a.vocab, a.ctx)
    return r, _table([(k, f"{v:,}") for k, v in r.items()])


def _add_commands(sub: Any) -> None:
    def cmd(name: str, help_: str, show: Callable[[argparse.Namespace], tuple[dict[str, Any], str]]):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(calc_show=show)
        return p

    p = cmd("flops", "training FLOPs C = k·N·D and PF-days", _show_flops)
    p.add_argument("--params", type=_positive, required=True, metavar="N")
    p.add_argument("--tokens", type=_positive, required=True, metavar="D")
    p.add_argument("--flops-per-param-token", type=_positive, default=6.0, metavar="k",
                   help="6 for a decoder (default); Brown et al. use 3 for T5")

    p = cmd("chinchilla", "compute-optimal parameters and tokens (Hoffmann Eq. 4)", _show_chinchilla)
    p.add_argument("--compute", type=_positive, required=True, metavar="C", help="training FLOPs")
    p.add_argument("--fit", choices=sorted(FITS), default=DEFAULT_FIT,
                   help=f"{DEFAULT_FIT} (default: Eq. 10 before rounding, which reproduces the paper's "
                        "40B at Gopher's budget), hoffmann (Eq. 10 as printed), epoch (Besiroglu 2024)")
    for name in ("E", "A", "B", "alpha", "beta"):
        p.add_argument(f"--{name}", type=_positive, default=None, help=f"override the fit's {name}")

    p = cmd("zero", "model-state bytes per GPU under ZeRO", _show_zero)
    p.add_argument("--params", type=_positive, required=True, metavar="N")
    p.add_argument("--gpus", type=_positive_int, required=True, metavar="K")
    p.add_argument("--stage", type=int, choices=ZERO_STAGES, required=True)
    p.add_argument("--k", type=_positive, default=12.0, help="optimizer bytes per parameter (12)")

    p = cmd("memory", "bytes of weights, gradients and optimizer state", _show_memory)
    p.add_argument("--params", type=_positive, required=True, metavar="N")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")

    p = cmd("params", "parameters of a GPT-2-style decoder (12·L·d² + 13·L·d + 2·d + embeddings)",
            _show_params)
    p.add_argument("--layers", type=_positive_int, required=True, metavar="L")
    p.add_argument("--d-model", type=_positive_int, required=True, metavar="D")
    p.add_argument("--vocab", type=_count, default=0, metavar="V",
                   help="vocabulary size (default 0: embeddings not counted, Kaplan's N)")
    p.add_argument("--ctx", type=_count, default=0, metavar="T",
                   help="context length, for learned position embeddings (default 0)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `calc` on the `principia` command line."""
    p = subparsers.add_parser("calc", help="calculators: flops, chinchilla, zero, memory, params",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_commands(p.add_subparsers(dest="calc_command", required=True, metavar="CALC"))
    p.set_defaults(fn=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run one calculation; 0 on success, 2 on bad input or a result beyond float range."""
    _warn_implausible(args)
    try:
        payload, text = args.calc_show(args)
        if not _finite(payload):
            raise ArithmeticError("a result overflows")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ArithmeticError as e:  # OverflowError, ZeroDivisionError: inputs beyond float range
        print(f"error: these inputs give no finite result ({e}); check their magnitudes", file=sys.stderr)
        return 2
    print(json.dumps(payload, indent=1, allow_nan=False) if args.json else text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="principia calc", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_commands(ap.add_subparsers(dest="calc_command", required=True, metavar="CALC"))
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse reports bad input with code 2 itself
        return int(e.code or 0)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
