"""MkDocs hooks (mkdocs.yml ``hooks:``): navigation, math, edit links and fast raw HTML blocks.

MkDocs loads this file by path, so the project root is appended to ``sys.path`` to import the
package: last, so that a stray module at the root never shadows the standard library.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.append(str(_ROOT))

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.plugins import event_priority  # noqa: E402
from mkdocs.structure.toc import AnchorLink, TableOfContents  # noqa: E402

from principia import __version__  # noqa: E402
from principia.site import blocks  # noqa: E402
from principia.site.mathml import convert_math  # noqa: E402
from principia.site.text import html_text  # noqa: E402

NAV_FILE = ".nav.json"
_BLOCKS: dict[str, list[list[str]]] = {}  # page source path -> its runs of raw HTML blocks


# Runs once, after mkdocs.yml is loaded: install the navigation that write_pages() wrote.
def on_config(config):
    path = Path(config["docs_dir"]) / NAV_FILE
    if not path.is_file():
        raise PluginError(f"Navigation file '{path}' does not exist: the pages are generated; "
                          "run 'principia build' (or principia.site.write_pages) first.")
    if not config.get("nav"):
        config["nav"] = json.loads(path.read_text(encoding="utf-8"))
    # The footer names the release a reader is citing, and the licences (see about/licence.md).
    config["copyright"] = f"Principia {__version__} · code: MIT · text and data: CC BY 4.0"
    _BLOCKS.clear()
    return config


# Runs for every page before Markdown: set aside raw HTML blocks, LaTeX to MathML, and the
# edit link a generated page declares in its front matter (a claim page edits its YAML).
def on_page_markdown(markdown, page, config, files):
    if "edit_url" in page.meta:
        page.edit_url = page.meta.get("edit_url") or None
    markdown, found = blocks.stash(markdown)
    if found:
        _BLOCKS[page.file.src_uri] = found
    return convert_math(markdown)


# Runs after Markdown, before the search plugin reads the page: light copies of the blocks
# (text only, see blocks.py), and the blocks' section headings added to the page's toc.
def on_page_content(html, page, config, files):
    found = _BLOCKS.get(page.file.src_uri, [])
    links = [AnchorLink(title, hid, 2) for hid, title in blocks.headings(found)]
    if links:
        items = list(page.toc) if page.toc else []
        if len(items) == 1 and items[0].level == 1:
            items[0].children.extend(links)
        else:
            page.toc = TableOfContents(items + links)
    return blocks.light(html, found)


# Runs last for every page, on the finished HTML: the full blocks, formulas as MathML.
@event_priority(-100)
def on_post_page(output, page, config):
    output = blocks.restore(output, _BLOCKS.pop(page.file.src_uri, []))
    return output.replace("</head>", _open_graph(page, config) + "</head>", 1)


def _open_graph(page, config) -> str:
    """Open Graph tags: the title, description and address shown when a page is shared."""
    desc = page.meta.get("description") or config.get("site_description") or ""
    tags = {"og:type": "article" if page.file.src_uri.startswith("claims/") else "website",
            "og:site_name": config.get("site_name") or "", "og:title": page.title or "",
            "og:description": desc, "og:url": page.canonical_url or ""}
    return "".join(f'<meta property="{k}" content="{html_text(v)}">' for k, v in tags.items() if v)
