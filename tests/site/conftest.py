"""Shared fixtures for the site tests: a copy of the fixture knowledge base, built once."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "site"
KB = FIXTURES / "kb"
GOLDEN = FIXTURES / "golden"


def copy_kb(dest: Path) -> Path:
    """The fixture claims, catalogue, references and results under dest."""
    shutil.copytree(KB / "claims", dest / "claims")
    shutil.copytree(KB / "results", dest / "results")
    return dest


@pytest.fixture(scope="session")
def figure_cache(tmp_path_factory) -> Path:
    """The fixture's figures drawn once per session (drawing is the slow part of a build)."""
    from principia.site import write_pages
    root = copy_kb(tmp_path_factory.mktemp("figures") / "kb")
    write_pages(root)
    return root / "build" / "figure-cache"


@pytest.fixture
def kb_copy(tmp_path: Path, figure_cache: Path) -> Path:
    root = copy_kb(tmp_path / "kb")
    shutil.copytree(figure_cache, root / "build" / "figure-cache")
    return root


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The fixture knowledge base built into a full MkDocs site (strict)."""
    from principia.site import build_site
    root = copy_kb(tmp_path_factory.mktemp("site") / "kb")
    return build_site(root)
