"""Figures drawn with matplotlib: legends off the data, bars for categories, shared fit colours,
a CSV of the plotted numbers, and a cache so that only changed figures are drawn again."""
from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from principia.site.plots import FigureStore, categories, draw, figure_csv, figure_key, render_svg

ROOT = Path(__file__).resolve().parents[2]


def _fig(**kw) -> dict:
    fig = {"title": "Loss", "xlabel": "N", "ylabel": "L", "xscale": "log", "yscale": "linear",
           "series": [{"label": f"series {i} with a long descriptive name", "x": [1, 10, 100, 1000],
                       "y": [4 - i * 0.5, 3 - i * 0.4, 2.5 - i * 0.3, 2.4 - i * 0.2], "style": "points"}
                      for i in range(6)]}
    fig.update(kw)
    return fig


def _recorded_figures() -> list[dict]:
    out = []
    for path in sorted((ROOT / "results").glob("*.full.json")):
        out += (json.loads(path.read_text()).get("evidence") or {}).get("figures") or []
    return out


def _legend_layout(fig: dict) -> tuple[bool, int, int]:
    """Draws `fig` -> (its legend overlaps the axes, line points drawn, points under the legend)."""
    f = draw(fig)
    f.draw_without_rendering()  # runs the layout, as saving does
    ax, legend = f.axes[0], f.legends[0]
    box = legend.get_window_extent()
    points = [xy for line in ax.get_lines() for xy in ax.transData.transform(line.get_xydata())]
    return box.overlaps(ax.get_window_extent()), len(points), sum(box.contains(*xy) for xy in points)


def test_legend_never_covers_a_data_point():
    """The legend sits outside the axes: no drawn point falls inside its box."""
    overlaps, points, covered = _legend_layout(_fig())
    assert not overlaps and points > 0 and covered == 0


@pytest.mark.parametrize("fig", _recorded_figures()[::13], ids=lambda f: f.get("title", "")[:30])
def test_recorded_figures_keep_their_legends_off_the_data(fig):
    """The same holds for figures the verifiers recorded (twelve of them)."""
    if len([s for s in fig["series"] if s.get("label")]) == 0:
        pytest.skip("no legend")
    overlaps, _, covered = _legend_layout(fig)
    assert not overlaps and covered == 0


def test_named_categories_are_bars_with_their_names():
    """'strategy: 0 = DDP; 1 = ZeRO-1' on x gives bars labelled DDP and ZeRO-1, not a line."""
    fig = _fig(xscale="linear", xlabel="strategy: 0 = DDP; 1 = ZeRO-1",
               series=[{"label": "bytes", "x": [0, 1, 0, 1], "y": [4, 2, 4.2, 2.1], "style": "points"}])
    assert categories(fig) == ("strategy", {0.0: "DDP", 1.0: "ZeRO-1"})
    ax = draw(fig).axes[0]
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.get_xticklabels()] == ["DDP", "ZeRO-1"]


def test_a_fit_shares_the_colour_of_its_series():
    """'fit, target 1.3' is drawn in the colour of 'target 1.3'; other series differ."""
    fig = _fig(series=[{"label": "target 1.3", "x": [1, 2], "y": [1, 2], "style": "points"},
                       {"label": "target 2.0", "x": [1, 2], "y": [2, 3], "style": "points"},
                       {"label": "fit, target 1.3", "x": [1, 2], "y": [1, 2], "style": "dashed"}])
    a, b, fit = draw(fig).axes[0].get_lines()
    assert fit.get_color() == a.get_color() != b.get_color()


def test_svg_is_valid_and_deterministic():
    """The SVG parses and is byte-identical when drawn twice (cache keys stay meaningful)."""
    one, two = render_svg(_fig()), render_svg(_fig())
    assert ET.fromstring(one).tag.endswith("svg") and one == two


def test_csv_holds_every_plotted_point():
    """The CSV beside a figure has one row per point with its series name."""
    rows = list(csv.reader(io.StringIO(figure_csv(_fig()))))
    assert rows[0][0] == "series" and len(rows) == 1 + 6 * 4


def test_store_draws_only_new_figures(tmp_path):
    """A figure already in the cache is copied, not drawn again; changed data is drawn."""
    store = FigureStore(tmp_path / "cache", tmp_path / "docs")
    key = store.files(_fig())
    assert store.drawn == 1 and (tmp_path / "docs" / "figures" / f"{key}.csv").is_file()
    again = FigureStore(tmp_path / "cache", tmp_path / "docs2")
    assert again.files(_fig()) == key and again.drawn == 0
    assert figure_key(_fig(title="Other")) != key


def test_built_claim_page_links_its_figure_and_data(built_site):
    """A claim page shows each figure as an SVG file with a 'Data (CSV)' link beside it."""
    html = (built_site / "claims" / "fixture-run.html").read_text(encoding="utf-8")
    svgs = [s for s in __import__("re").findall(r'<img src="\.\./(figures/[0-9a-f]+)\.svg"', html)]
    assert svgs and all((built_site / f"{s}.svg").is_file() and (built_site / f"{s}.csv").is_file() for s in svgs)
    assert "Data (CSV)" in html
