"""Write the site's Markdown, then build it with MkDocs (Material theme) in strict mode.

Generated pages go to ``build/docs/`` (never committed), next to a copy of the hand-written
pages of ``docs/``: the hand-written folder stays free of generated files, a page deleted from
the knowledge base can never linger, and ``mkdocs.yml`` points ``docs_dir`` at the one folder
that holds both. The navigation is data-driven (it follows ``_sections.yaml``), so it is written
to ``build/docs/.nav.json`` and installed by the hook (``principia/site/hooks.py``).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..loader import KnowledgeBase, load_kb
from .bib import bibliography_page, bibtex
from .cite import changelog_page
from .claimpage import claim_page
from .home import home_page, tag_pages, tags_index
from .model import load_site_data
from .plots import FigureStore
from .pages import (claims_json, dashboard_page, errata_page, graph_page, group_md, group_page,
                    groups, groups_index, nav, section_page, sections_of)
from .text import claim_md, section_md

__all__ = ["SiteError", "write_pages", "build_site", "config_file", "REPO", "GENERATED", "NAV_FILE"]

REPO = Path(__file__).resolve().parents[2]  # the project checkout holding mkdocs.yml and docs/
GENERATED = Path("build") / "docs"
FIGURE_CACHE = Path("build") / "figure-cache"  # drawn figures by content hash, kept between builds
NAV_FILE = ".nav.json"  # MkDocs skips dot-files, the hook reads it
MARKER = ".principia-generated"
GENERATED_PAGES = ("dashboard.md", "errata.md", "graph.md", "bibliography.md", "changelog.md", "index.md")  # a docs/ page of the same name is replaced


class SiteError(RuntimeError):
    """The site cannot be built; the message says which file or claim and why."""


def config_file(root: Path) -> Path:
    """The knowledge base's mkdocs.yml, else the project's."""
    own = Path(root) / "mkdocs.yml"
    return own if own.is_file() else REPO / "mkdocs.yml"


def _docs_source(root: Path) -> Path:
    own = Path(root) / "docs"
    return own if own.is_dir() else REPO / "docs"


class _AnyTagLoader(yaml.SafeLoader):
    """Reads mkdocs.yml, ignoring tags such as !ENV or !!python/name (values become None)."""


def _env(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """MkDocs' !ENV: the first set variable of a [VAR, ..., default] list, else the default."""
    names = loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else [loader.construct_scalar(node)]
    for n in names[:-1] if len(names) > 1 else names:
        if os.environ.get(str(n)):
            return os.environ[str(n)]
    return names[-1] if len(names) > 1 else None


_AnyTagLoader.add_constructor("!ENV", _env)
_AnyTagLoader.add_multi_constructor("", lambda loader, suffix, node: None)
_AnyTagLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def site_config(cfg_path: Path) -> dict[str, Any]:
    """The MkDocs configuration as plain data ({} when it cannot be read)."""
    try:
        cfg = yaml.load(cfg_path.read_text(encoding="utf-8"), Loader=_AnyTagLoader) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def edit_base(cfg_path: Path) -> str:
    """'https://…/edit/main/' from the config's edit_uri ('…/edit/main/docs/'): claims live beside
    docs/. Empty unless the configuration declares its repository (no edit link to a guess)."""
    cfg = site_config(cfg_path)
    uri = str(cfg.get("edit_uri") or "")
    if not uri.startswith(("http://", "https://")):
        repo = str(cfg.get("repo_url") or "").rstrip("/")
        uri = f"{repo}/{uri.lstrip('/')}" if repo and uri else ""
    uri = uri if uri.endswith("/") else uri + "/"
    return uri[: -len("docs/")] if uri.endswith("/docs/") else ""


def _stage(final: Path, marker: bool = True) -> Path:
    """A private folder beside `final` to write into; concurrent builds never share one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the site is published
    if marker:
        (tmp / MARKER).write_text("Written by principia.site.build; deleted on every build.\n")
    return tmp


def _swap(tmp: Path, final: Path, guarded: bool = True) -> None:
    """Put `tmp` in place of `final` by renames, so a reader or a concurrent build sees one whole
    folder or the other; with `guarded`, refuse to replace a folder this module did not write."""
    for _ in range(20):
        try:
            os.rename(tmp, final)
            return
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
        if guarded and final.is_dir() and not (final / MARKER).exists():
            shutil.rmtree(tmp, ignore_errors=True)
            raise SiteError(f"'{final}' exists and was not written by 'principia build'; "
                            f"move it away or delete it (expected a '{MARKER}' file inside)")
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        try:
            os.rename(final, old)
        except FileNotFoundError:
            continue  # another build moved it first
        shutil.rmtree(old, ignore_errors=True)
    raise SiteError(f"could not replace '{final}': other builds kept replacing it")


def _write(dest: Path, rel: str, text: str) -> None:
    path = dest / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy regular files and folders only. A symlink (say to /proc/self/environ or .git/config)
    would publish its target in the site and its search index, so it is refused by name."""
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        for name in dirnames + filenames:
            p = here / name
            if p.is_symlink() or not (p.is_dir() or p.is_file()):
                raise SiteError(f"'{p.relative_to(src.parent)}' is a symlink or special file; the "
                                f"site copies only regular files from docs/")
        (dest / here.relative_to(src)).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            shutil.copyfile(here / name, dest / here.relative_to(src) / name, follow_symlinks=False)


def _hand_written(src: Path, dest: Path) -> tuple[list[str], list[str]]:
    """Copy docs/ into the generated folder; return its pages for the nav's 'About' part:
    about/*.md first, then every other hand-written page but the home page."""
    if not src.is_dir():
        return [], []
    _copy_tree(src, dest)
    pages = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.md")
                   if not any(part.startswith(".") for part in p.relative_to(src).parts))
    pages = [p for p in pages if p not in GENERATED_PAGES and not p.startswith(("claims/", "sections/", "groups/"))]
    about = [p for p in pages if p.startswith("about/")]
    return about, [p for p in pages if p not in about and p != "index.md"]


_HOME = """# Principia

An executable knowledge base of the principles of training large language models. Every claim
is checked by code; the verdict comes from the claim's own decision rule.
"""


def _intro(src: Path) -> str:
    """The hand-written home page text (docs/index.md) the claims table goes into."""
    own = src / "index.md"
    text = own.read_text(encoding="utf-8") if own.is_file() else _HOME
    if text.startswith("---\n") and "\n---\n" in text[4:]:
        text = text[4:].split("\n---\n", 1)[1]  # the generated front matter replaces it
    return text


def write_pages(root: Path | str, kb: KnowledgeBase | None = None, dest: Path | None = None) -> Path:
    """Write every page's Markdown (and claims.json, references.bib) to build/docs; return that folder."""
    root = Path(root).resolve()
    final = Path(dest) if dest else root / GENERATED
    tmp = _stage(final)
    try:
        _write_all(root, kb, tmp)
        _swap(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_all(root: Path, kb: KnowledgeBase | None, dest: Path) -> None:
    """Every generated page, the copied docs/ pages and the navigation, into `dest`."""
    data = load_site_data(root, kb)
    about, others = _hand_written(_docs_source(root), dest)
    cfg_path = config_file(root)
    base, site_url = edit_base(cfg_path), str(site_config(cfg_path).get("site_url") or "")
    store = FigureStore(root / FIGURE_CACHE, dest)
    store.prepare([f for v in data.views.values() for f in ((v.shown or {}).get("evidence") or {}).get("figures") or []
                   if isinstance(f, dict)])
    for cid, v in data.views.items():
        _write(dest, claim_md(cid), claim_page(v, data, store, base, site_url))
    for rel, text in tag_pages(data).items():
        _write(dest, rel, text)
    _write(dest, "tags/index.md", tags_index(data))
    _write(dest, "changelog.md", changelog_page(data))
    _write(dest, "index.md", home_page(data, _intro(_docs_source(root))))
    by = sections_of(data)
    for group, sids in groups(data).items():
        _write(dest, group_md(group), group_page(data, group, sids))
        for sid in sids:
            _write(dest, section_md(sid), section_page(data, sid, by.get(sid, [])))
    _write(dest, "groups/index.md", groups_index(data))
    _write(dest, "dashboard.md", dashboard_page(data))
    _write(dest, "errata.md", errata_page(data))
    _write(dest, "graph.md", graph_page(data))
    _write(dest, "bibliography.md", bibliography_page(data))
    _write(dest, "references.bib", bibtex(data))
    _write(dest, "claims.json", claims_json(data))
    _write(dest, NAV_FILE, json.dumps(nav(data, about, others), indent=1))


def build_site(root: Path | str = ".", out: Path | str | None = None, strict: bool = True) -> Path:
    """Write the pages and build the static site (default ``root/site``); return the site folder.

    With ``strict``, a knowledge base with problems is refused and MkDocs runs ``--strict``
    (any warning, e.g. a broken link, fails the build). Raises SiteError.
    """
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    root = Path(root).resolve()
    kb = load_kb(root)
    if strict and kb.problems:
        shown = "\n".join(f"  {p}" for p in kb.problems[:20])
        raise SiteError(f"{len(kb.problems)} problems in the knowledge base (run 'principia check'):\n{shown}")
    site = Path(out).resolve() if out else root / "site"
    docs, built = _stage(root / GENERATED), _stage(site, marker=False)  # private: concurrent builds don't mix
    try:
        _write_all(root, kb, docs)
        cfg = load_config(str(config_file(root)), docs_dir=str(docs), site_dir=str(built), strict=strict)
        build(cfg)
        _swap(docs, root / GENERATED)
        _swap(built, site, guarded=False)
    except MkDocsException as e:
        raise SiteError(f"mkdocs build failed: {e}") from e
    finally:
        for tmp in (docs, built):
            shutil.rmtree(tmp, ignore_errors=True)
    return site
