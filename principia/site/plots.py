"""Evidence figures drawn with matplotlib: SVG files with a CSV of the plotted numbers beside each.

A figure is the JSON form of ``principia.evidence.Figure``. The legend sits below the axes, so it
never covers data; each series has its own colour and a fit (``fit, target 1.3``) shares the
colour of the series it fits; an axis whose label names its categories (``strategy: 0 = DDP;
1 = ZeRO-1``) or a figure with ``categories`` is drawn as bars with those names. Sizes are chosen
so that text stays about 10 px high when the figure is shown 360 px wide (a 390 px phone).

Drawing is the slow part of a build, so files are cached by a hash of the figure's data (and
of ``STYLE_VERSION``): a build only draws figures that are new or changed.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["STYLE_VERSION", "figure_key", "figure_csv", "categories", "draw", "render_svg", "FigureStore"]

STYLE_VERSION = "2"  # bump when the drawing changes: every cached figure is drawn again
SIZE = (5.0, 3.9)  # inches: 480 css px wide
_FIT = re.compile(r"^(fit|fitted|model)\b[\s,:]*", re.I)
_CAT = re.compile(r"(-?\d+)\s*=\s*([^;,]+)")


def figure_key(fig: dict[str, Any]) -> str:
    """Content hash naming a figure's files: same data and style, same files."""
    blob = json.dumps(fig, sort_keys=True, default=str, ensure_ascii=False) + STYLE_VERSION
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _series(fig: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in fig.get("series") or [] if isinstance(s, dict)]


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def categories(fig: dict[str, Any]) -> tuple[str, dict[float, str]]:
    """(axis name, {x value: category name}) when the x axis holds categories, else ('', {})."""
    names = fig.get("categories")
    if isinstance(names, list) and names:
        return str(fig.get("xlabel", "")), {float(i): str(n) for i, n in enumerate(names)}
    label = str(fig.get("xlabel", ""))
    found = {float(k): name.strip().rstrip(")") for k, name in _CAT.findall(label)}
    xs = {_num(x) for s in _series(fig) for x in s.get("x") or []}
    if len(found) >= 2 and xs and xs <= set(found):
        return label.split(":")[0].split("(")[0].strip(), found
    return "", {}


def figure_csv(fig: dict[str, Any]) -> str:
    """The plotted numbers, one row per point: series, x (and its category), y, y_lo, y_hi."""
    _, cats = categories(fig)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["series", fig.get("xlabel", "x"), "category", fig.get("ylabel", "y"), "y_lo", "y_hi"])
    for s in _series(fig):
        lo, hi = s.get("y_lo") or [], s.get("y_hi") or []
        for i, (x, y) in enumerate(zip(s.get("x") or [], s.get("y") or [])):
            w.writerow([s.get("label", ""), x, cats.get(_num(x), ""), y,
                        lo[i] if i < len(lo) else "", hi[i] if i < len(hi) else ""])
    return out.getvalue()


def _fitted(label: str, own: list[tuple[str, Any]]) -> Any:
    """The colour of the series a fit's label names ('fit, target 1.3' -> 'target 1.3 nats'), or None."""
    rest = _FIT.sub("", label).strip().lower()
    if not _FIT.match(label) or not rest or rest == label.lower():
        return None
    return next((c for name, c in own if name.startswith(rest[:12]) or rest.startswith(name[:12])), None)


def _colours(series: list[dict[str, Any]]) -> list[Any]:
    """One colour per series; a fit takes the colour of the series whose label it repeats."""
    from matplotlib import colormaps
    cmap = colormaps["tab10" if len(series) <= 10 else "tab20"]
    out: list[Any] = []
    own: list[tuple[str, Any]] = []
    for s in series:
        label = str(s.get("label", ""))
        colour = _fitted(label, own)
        if colour is None:
            colour = cmap(len(own) % cmap.N)
            own.append((label.lower(), colour))
        out.append(colour)
    return out


def _wrap(text: Any, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or ""


def _plot_series(ax: Any, s: dict[str, Any], colour: Any, log: tuple[bool, bool]) -> None:
    xs, ys = [_num(v) for v in s.get("x") or []], [_num(v) for v in s.get("y") or []]
    ok = [math.isfinite(x) and math.isfinite(y) and (x > 0 or not log[0]) and (y > 0 or not log[1])
          for x, y in zip(xs, ys)]
    if not any(ok):
        return
    # A value that cannot be drawn becomes a gap (NaN), not a line joining its neighbours.
    keep = [(x, y) if good else (math.nan, math.nan) for x, y, good in zip(xs, ys, ok)]
    lo, hi = s.get("y_lo"), s.get("y_hi")
    if lo and hi and len(lo) == len(xs) == len(hi):
        ax.fill_between(xs, [_num(v) for v in lo], [_num(v) for v in hi], color=colour, alpha=0.2, linewidth=0)
    x, y = zip(*keep)
    style = s.get("style", "line")
    label = str(s.get("label", "")) or None
    if style == "points" or sum(ok) == 1:
        ax.plot(x, y, "o", color=colour, markersize=4.5, label=label)
    else:
        ax.plot(x, y, "--" if style == "dashed" else "-", color=colour, linewidth=1.8, label=label)


def _plot_bars(ax: Any, series: list[dict[str, Any]], colours: list[Any], cats: dict[float, str]) -> None:
    """Grouped bars: one group per category, one bar per series (the mean), each value a dot."""
    keys = sorted(cats)
    width = 0.8 / max(len(series), 1)
    for i, (s, colour) in enumerate(zip(series, colours)):
        at: dict[float, list[float]] = {}
        for x, y in zip(s.get("x") or [], s.get("y") or []):
            if math.isfinite(_num(y)) and _num(x) in cats:
                at.setdefault(_num(x), []).append(_num(y))
        pos = [keys.index(k) - 0.4 + width * (i + 0.5) for k in keys if k in at]
        means = [sum(at[k]) / len(at[k]) for k in keys if k in at]
        ax.bar(pos, means, width * 0.9, color=colour, label=str(s.get("label", "")) or None)
        dots = [(p, y) for p, k in zip(pos, [k for k in keys if k in at]) for y in at[k] if len(at[k]) > 1]
        if dots:
            ax.plot(*zip(*dots), ".", color="black", markersize=3)
    ax.set_xticks(range(len(keys)), [_wrap(cats[k], 14) for k in keys])


def _tick(v: float, _pos: Any = None) -> str:
    """Tick labels in the site's one number format (SI suffixes for large values)."""
    from .text import fmt, fmt_si
    if v == 0:
        return "0"
    return fmt_si(v, 3) if abs(v) >= 1e4 else fmt(v, 3)


def _axes_format(ax: Any, log: tuple[bool, bool], cats: bool) -> None:
    """Plain-text ticks (TeX-free, so fast to lay out); a log axis spanning under two decades
    gets 1-2-5 ticks so that it always has several labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    axes = ((ax.xaxis, log[0], ax.get_xlim(), cats), (ax.yaxis, log[1], ax.get_ylim(), False))
    for axis, is_log, lims, skip in axes:
        if skip:
            continue
        if is_log:
            lo, hi = sorted(abs(v) or 1e-300 for v in lims)
            narrow = math.log10(hi / lo) < 2
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if narrow else (1.0,), numticks=8))
            axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(FuncFormatter(_tick))


def draw(fig: dict[str, Any]) -> Any:
    """The figure as a matplotlib Figure (legend below the axes, outside the data)."""
    from matplotlib.figure import Figure
    series = _series(fig)
    colours = _colours(series)
    name, cats = categories(fig)
    f = Figure(figsize=SIZE, layout="constrained")
    ax = f.add_subplot()
    log = (fig.get("xscale") == "log" and not cats, fig.get("yscale") == "log")
    if cats:
        _plot_bars(ax, series, colours, cats)
    else:
        for s, c in zip(series, colours):
            _plot_series(ax, s, c, log)
        ax.set_xscale("log" if log[0] else "linear")
    ax.set_yscale("log" if log[1] else "linear")
    _axes_format(ax, log, bool(cats))
    ax.set_title(_wrap(fig.get("title", ""), 52), fontsize=11, fontweight="bold")
    ax.set_xlabel(_wrap(name or fig.get("xlabel", ""), 60), fontsize=10)
    ax.set_ylabel(_wrap(fig.get("ylabel", ""), 36), fontsize=10)
    ax.tick_params(labelsize=10)
    ax.grid(True, alpha=0.25)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ncols = 1 if max(len(t) for t in labels) > 24 or len(labels) < 3 else 2
        f.legend(handles, [_wrap(t, 40) for t in labels], loc="outside lower center", ncols=ncols,
                 fontsize=10, frameon=False)
    return f


def render_svg(fig: dict[str, Any]) -> str:
    """The figure as SVG text (deterministic: fixed ids, no date)."""
    import matplotlib
    out = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "principia", "svg.fonttype": "none",
                                "font.family": "sans-serif", "text.parse_math": False}):
        draw(fig).savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return out.getvalue()


class FigureStore:
    """Writes each figure's SVG and CSV into the site (``figures/<key>.svg``), drawing only
    figures missing from the cache folder (kept between builds)."""

    def __init__(self, cache: Path, dest: Path):
        self.cache, self.dest = Path(cache), Path(dest)
        self.drawn = 0
        self._keys: dict[int, str] = {}  # id(figure) -> key: hashing a figure's data costs a JSON dump

    def key(self, fig: dict[str, Any]) -> str:
        k = self._keys.get(id(fig))
        if k is None:
            k = self._keys[id(fig)] = figure_key(fig)
        return k

    def prepare(self, figs: list[dict[str, Any]]) -> None:
        """Draw every missing figure up front, in parallel when there are many (a cold build)."""
        missing = {self.key(f): f for f in figs if not (self.cache / f"{self.key(f)}.svg").is_file()}
        workers = min(os.cpu_count() or 1, 8)
        if len(missing) < 8 or workers < 2:
            return  # files() draws them one by one
        from concurrent.futures import ProcessPoolExecutor
        self.cache.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(workers) as pool:
            for key, svg in zip(missing, pool.map(render_svg, missing.values(), chunksize=4)):
                self._keep(self.cache / f"{key}.svg", svg)
                self.drawn += 1

    def files(self, fig: dict[str, Any]) -> str:
        """The figure's key; figures/<key>.svg and figures/<key>.csv exist afterwards."""
        key = self.key(fig)
        svg, target = self.cache / f"{key}.svg", self.dest / "figures" / f"{key}.svg"
        if not svg.is_file():
            self._keep(svg, render_svg(fig))
            self.drawn += 1
        if not svg.with_suffix(".csv").is_file():
            self._keep(svg.with_suffix(".csv"), figure_csv(fig))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(svg, target)
        shutil.copyfile(svg.with_suffix(".csv"), target.with_suffix(".csv"))
        return key

    def _keep(self, path: Path, text: str) -> None:
        """Write into the cache; a build stopped halfway never leaves half a file there."""
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
