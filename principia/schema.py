"""The claim schema: one pydantic model, also exported as JSON Schema for editors.

A claim file's id is its file name (``claims/<id>.yaml``). Structure errors are reported by
``principia.loader`` with the file and the dotted field path.
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Citation", "Source", "Assumption", "Check", "Replication", "Decision", "Falsifier", "Relations",
    "Claim", "Reference", "Section", "SeedDoc", "SourceErratum", "Catalogue", "json_schema", "KINDS", "TIERS",
]

KINDS = ("closed", "run", "dist", "open", "published")
TODO = "TODO:"  # the marker `principia new` leaves in a stub; a claim holding one is not finished
# Testable kinds (everything but 'open'): each must declare a falsifier, a perturbed setting under
# which its verifier refutes it, so that a claim that cannot come out refuted is caught.
NUMERIC_KINDS = ("closed", "published", "run", "dist")
TIERS = ("fast", "full")
ID_RE = r"^[a-z0-9][a-z0-9-]{1,63}$"
VERIFIER_RE = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
TABLE_KEY_RE = r"^[a-z0-9][a-z0-9_-]{0,63}/[a-z0-9][a-z0-9_-]{0,63}$"  # <reference-key>/<name>

Scalar = bool | int | float | str
ParamValue = Scalar | list[Any] | dict[str, Any] | None


class Strict(BaseModel):
    """Unknown keys are errors; NaN and inf are rejected everywhere."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=False)


class Citation(Strict):
    ref: str = Field(description="Key of a work in claims/_references*.yaml")
    locator: str = Field(min_length=2, description="Exact place: table, figure, equation or section")
    note: str = ""


class Source(Strict):
    seed: str = Field(description="Key of a source document in claims/_sections.yaml")
    place: str = Field(min_length=1, description="Where in the source the principle is stated")
    alias: str = Field("", description="The source list's own numbering, kept as an alias")


class Assumption(Strict):
    name: str
    text: str


BAND_OPS = ("approx", "between", "outside", "equivalent")
COMPARE_OPS = ("<", "<=", ">", ">=")


class Check(Strict):
    """One comparison of a measured quantity against the claim's expectation."""

    quantity: str = Field(description="Key in the verifier's Evidence.measured")
    op: Literal["<", "<=", ">", ">=", "approx", "between", "outside", "equivalent"]
    value: float | None = None
    low: float | None = None
    high: float | None = None
    rel_tol: float | None = Field(None, ge=0)
    abs_tol: float | None = Field(None, ge=0)
    margin: float | None = Field(None, gt=0, description=(
        "Equivalence margin of op 'equivalent': supported when the whole interval lies within "
        "value ± margin, refuted when it lies wholly outside"))
    min_effect: float | None = Field(None, ge=0, description=(
        "Smallest effect of interest of a comparison, declared before the run: an effect "
        "|measured − value| smaller than it is neither supported nor refuted"))
    part: str = Field("", description="Names the part of the statement this check supports")
    source_says: str = Field("", description="What the source states; a refuted check is listed as an erratum")
    why: str = ""

    @model_validator(mode="after")
    def _operands(self) -> "Check":
        if self.op in ("between", "outside") and (self.low is None or self.high is None):
            raise ValueError(f"op '{self.op}' needs both 'low' and 'high'")
        if self.op in ("between", "outside") and self.low is not None and self.high is not None \
                and self.low > self.high:
            raise ValueError(f"'low' ({self.low}) must not exceed 'high' ({self.high})")
        if self.op not in ("between", "outside") and self.value is None:
            raise ValueError(f"op '{self.op}' needs 'value'")
        if self.op == "approx" and self.rel_tol is None and self.abs_tol is None:
            raise ValueError("op 'approx' needs 'rel_tol' or 'abs_tol'")
        if self.op == "equivalent" and self.margin is None:
            raise ValueError("op 'equivalent' needs 'margin' (the equivalence margin, > 0)")
        if self.op != "equivalent" and self.margin is not None:
            raise ValueError(f"'margin' belongs to op 'equivalent' (got op '{self.op}')")
        if self.min_effect is not None and self.op not in COMPARE_OPS:
            raise ValueError(f"'min_effect' applies to comparisons {list(COMPARE_OPS)} "
                             f"(got op '{self.op}'; a band's width is its margin)")
        return self


class Replication(Strict):
    """How many independent data draws a run's evidence must report, per tier."""

    min_data_draws: dict[Literal["fast", "full"], int] = Field(description=(
        "Fewest data draws (the data source's seed, a corpus sample or split) per tier, "
        "e.g. {fast: 2, full: 5}; init seeds nest inside draws and do not count"))
    why: str = ""

    @field_validator("min_data_draws")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {t: n for t, n in v.items() if n < 1}
        if bad:
            raise ValueError(f"min_data_draws must be at least 1 (got {bad})")
        return v


class Decision(Strict):
    checks: list[Check] = Field(min_length=1)
    key: str = Field("", description="Quantity tracked in history and 'what would flip this'")
    device_dependent: list[str] = Field(
        default_factory=list,
        description="Quantities whose outcome depends on the hardware that measures them (timings); "
                    "the reproduction test does not require them to repeat across runs")
    replication: Replication | None = Field(None, description=(
        "Data draws the evidence must report (Evidence.replication.data_draws); fewer is an error"))

    @model_validator(mode="after")
    def _key_known(self) -> "Decision":
        names = [c.quantity for c in self.checks]
        if self.key and self.key not in names:
            raise ValueError(f"key '{self.key}' is not the quantity of any check (got {names})")
        unknown = [q for q in self.device_dependent if q not in names]
        if unknown:
            raise ValueError(f"device_dependent names no check's quantity: {unknown}")
        return self


class Falsifier(Strict):
    """A perturbed parameter set under which the verifier must refute the claim."""

    params: dict[str, ParamValue]
    why: str = Field(min_length=3)
    tier: Literal["fast", "full"] = "fast"
    part: str = Field("", description="The part of the statement that must fail (a check naming it "
                                      "refuted); empty: the whole claim must come out refuted")


class Relations(Strict):
    uses: list[str] = Field(default_factory=list)
    contests: list[str] = Field(default_factory=list)


def _todo_paths(data: Any, path: str = "") -> list[str]:
    """Dotted paths of the string values that still hold the stub marker."""
    if isinstance(data, str):
        return [path or "(value)"] if TODO in data else []
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _todo_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _todo_paths(v, f"{path}.{i}")]
    return []


class Claim(Strict):
    title: str = Field(min_length=3, max_length=200)
    statement: str = Field(min_length=10, max_length=4000)
    section: str
    sources: list[Source] = Field(min_length=1)
    citations: list[Citation] = Field(min_length=1)
    kind: Literal["closed", "run", "dist", "open", "published"]
    verifier: str | None = Field(None, pattern=VERIFIER_RE)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    tiers: dict[Literal["fast", "full"], dict[str, ParamValue]] = Field(default_factory=dict)
    timeout_s: dict[Literal["fast", "full"], float] = Field(default_factory=dict)
    assumptions: list[Assumption] = Field(default_factory=list)
    decision: Decision | None = None
    falsify: list[Falsifier] = Field(default_factory=list)
    scope: str = Field("", description="What a small analogue does and does not show")
    untestable: str = Field("", description="For kind 'open': why no run here can settle it")
    no_falsifier: str = Field("", description=(
        "For kind 'run' only, in place of 'falsify': what was tried and why no perturbed setting "
        "can make this run refute the claim yet; shown on the claim page as an open weakness"))
    tables: list[Annotated[str, Field(pattern=TABLE_KEY_RE)]] = Field(
        default_factory=list, description="For kind 'published': transcribed tables "
                                          "data/<reference-key>/<name>.csv the verifier re-analyses")
    relations: Relations = Field(default_factory=Relations)
    tags: list[str] = Field(default_factory=list)
    notes: str = ""
    tiers_note: str = Field("", description=(
        "Why the fast and full tiers' recorded verdicts differ; `principia check` warns about a "
        "disagreement this does not explain"))

    @model_validator(mode="before")
    @classmethod
    def _no_todo(cls, data: Any) -> Any:
        left = sorted(_todo_paths(data))
        if left:
            raise ValueError(f"still a stub: fill in the '{TODO}' in {', '.join(left)}")
        return data

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", t)]
        if bad:
            raise ValueError(f"tags must be lower-case words joined by '-' (got {bad})")
        return v

    @field_validator("timeout_s", mode="before")
    @classmethod
    def _timeouts(cls, v: Any) -> Any:
        for tier, s in (v.items() if isinstance(v, dict) else ()):
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 1 <= s <= 7200:
                raise ValueError(f"timeout for tier '{tier}' must be a number of seconds in "
                                 f"[1, 7200] (got {s!r})")
        return v

    @model_validator(mode="after")
    def _published_tables(self) -> "Claim":
        if self.kind == "published" and not self.tables:
            raise ValueError("kind 'published' needs 'tables': the transcribed tables it re-analyses")
        if self.tables and self.kind != "published":
            raise ValueError(f"'tables' belong to kind 'published' claims (this one is '{self.kind}')")
        return self

    @model_validator(mode="after")
    def _kind_fields(self) -> "Claim":
        if self.kind == "open":
            if not self.untestable.strip():
                raise ValueError("kind 'open' needs 'untestable': the reason no run here settles it")
            if self.verifier or self.decision:
                raise ValueError("kind 'open' takes no 'verifier' or 'decision'; "
                                 "verify a small analogue as a separate claim and link it in 'relations'")
        else:
            missing = [f for f in ("verifier", "decision") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"kind '{self.kind}' needs {', '.join(repr(m) for m in missing)}")
            if "fast" not in self.tiers:
                raise ValueError("every testable claim needs a 'fast' tier under 'tiers' (it may be {})")
            self._falsifiers_fit()
        if self.no_falsifier.strip() and (self.kind != "run" or self.falsify):
            raise ValueError("'no_falsifier' is only for a run claim that has no 'falsify' entry")
        return self

    def _falsifiers_fit(self) -> None:
        """A falsifier's part must be one the checks name."""
        parts = {c.part for c in self.decision.checks if c.part} if self.decision else set()
        for i, f in enumerate(self.falsify):
            if f.part and f.part not in parts:
                raise ValueError(f"falsify.{i}.part '{f.part}' names no check's part "
                                 f"(the checks name {sorted(parts)})")

    def tier_params(self, tier: str) -> dict[str, Any]:
        """The paper's values overlaid with the tier's settings."""
        return {**self.params, **self.tiers.get(tier, {})}

    def verdict_inputs(self, tier: str) -> dict[str, Any]:
        """What a tier's verdict depends on: the verifier, its parameters and the rule (with the
        texts it copies into the result). Wording, citations and tags are not inputs, so editing
        them keeps recorded results current."""
        return {"kind": self.kind, "verifier": self.verifier, "params": self.tier_params(tier),
                "decision": self.decision.model_dump(mode="json") if self.decision else None,
                "untestable": self.untestable, **({"tables": self.tables} if self.tables else {})}

    def timeout(self, tier: str) -> float:
        return self.timeout_s.get(tier, 60.0 if tier == "fast" else 1800.0)


class Reference(Strict):
    title: str
    authors: str
    year: int = Field(ge=1900, le=2100)
    arxiv: str = Field("", pattern=r"^(\d{4}\.\d{4,5}|)$")
    url: str = Field("", pattern=r"^(https?://\S+|)$")
    venue: str = ""

    @model_validator(mode="after")
    def _where(self) -> "Reference":
        if not (self.arxiv or self.url):
            raise ValueError("a reference needs 'arxiv' or 'url'")
        return self

    def link(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else self.url


class SourceErratum(Strict):
    """A slip in a seed document that no measurement can show: a wrong link, a garbled citation."""

    place: str = Field(min_length=2, description="Where in the source")
    says: str = Field(min_length=2, description="The source's own words, quoted")
    finding: str = Field(min_length=2, description="What is wrong, and what it should be")


class SeedDoc(Strict):
    title: str
    file: str = Field(description="File name of the seed document it was read from")
    url: str = Field("", pattern=r"^(https?://\S+|)$")
    errata: list[SourceErratum] = Field(default_factory=list)


class Section(Strict):
    title: str
    seed: str
    group: str = Field(description="Top-level group, e.g. 'How' or 'What' for the principles list")
    alias: str = ""
    blurb: str = ""


class Catalogue(Strict):
    """claims/_sections.yaml: the source documents and the sections that follow them."""

    seeds: dict[str, SeedDoc]
    sections: dict[str, Section]


def json_schema() -> str:
    """JSON Schema of a claim file, for YAML editors (yaml-language-server)."""
    schema = Claim.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Principia claim"
    return json.dumps(schema, indent=2, sort_keys=True)
