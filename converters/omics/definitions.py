"""Allele-definition tables of the pharmacogene panel, loaded from versioned package data.

Each ``data/pgx/<GENE>.json`` holds, for one gene on GRCh38: the positions (rsid, position,
VCF ref and alts), the named alleles (star alleles) with the alleles they carry at their core
positions, each allele's function and activity value, and the guideline's rule that turns
two functions (or an activity score) into a phenotype. A named allele carries the reference
base at every position it does not list; the reference allele, and alleles marked
``pins_all``, are fully specified, which is what the caller's match score counts.

The tables are generated, never edited by hand: ``scripts/pgx_definitions.py`` builds them from
a published source (the pypgx package's CPIC/PharmVar tables, or a PharmCAT ``allele_definitions``
directory) and writes ``data/pgx/SOURCE.json`` with the source's name, version, SHA-256 and
licence (``source_manifest()``). The panel is the set of genes PharmCAT calls from a VCF; CYP2D6
and HLA come in as outside calls (``converters.omics.pharmcat``).
"""

from __future__ import annotations

import csv
import json
from functools import cache
from importlib import resources
from typing import Literal, Self

from pydantic import Field, model_validator

from interop.errors import ConversionError
from interop.schema.base import Frozen, parse

__all__ = [
    "PANEL",
    "ActivityRange",
    "GeneDefinition",
    "NamedAllele",
    "PhenotypeRule",
    "Position",
    "hgnc_id",
    "known_genes",
    "load_definition",
    "load_panel",
    "source_manifest",
]

PANEL = (
    "ABCG2",
    "CACNA1S",
    "CFTR",
    "CYP2B6",
    "CYP2C19",
    "CYP2C9",
    "CYP3A4",
    "CYP3A5",
    "CYP4F2",
    "DPYD",
    "G6PD",
    "IFNL3",
    "NUDT15",
    "RYR1",
    "SLCO1B1",
    "TPMT",
    "UGT1A1",
    "VKORC1",
)


class Position(Frozen):
    """One variant position of a gene, as a VCF writes it (GRCh38, 1-based)."""

    id: str = Field(min_length=1, description="rsid, or chrom:pos when none")
    pos: int = Field(ge=1)
    ref: str = Field(min_length=1)
    alts: tuple[str, ...] = Field(min_length=1)


class NamedAllele(Frozen):
    """A star allele (or named variant): what it carries at its defining positions."""

    name: str = Field(min_length=1)
    function: str = Field(min_length=1, description="CPIC allele function, e.g. No function")
    activity: float | None = Field(default=None, ge=0, description="CPIC activity value")
    defining: dict[str, str | tuple[str, ...]] = Field(
        default_factory=dict, description="Position id -> allele (or any of several alleles)"
    )
    pins_all: bool = Field(default=False, description="Fully specified: reference elsewhere")


class PhenotypeRule(Frozen):
    """Two allele functions (in any order) -> phenotype."""

    functions: tuple[str, str]
    phenotype: str


class ActivityRange(Frozen):
    """``min <= score <= max`` (``< max`` when not ``max_inclusive``) -> phenotype."""

    min: float
    max: float
    max_inclusive: bool = True
    phenotype: str

    def holds(self, score: float) -> bool:
        upper = score <= self.max + 1e-9 if self.max_inclusive else score < self.max - 1e-9
        return self.min - 1e-9 <= score and upper


class PhenotypeMethod(Frozen):
    """How two alleles become a phenotype: by their functions, by activity score, or not at all
    (``none``: no CPIC phenotype for the gene, e.g. CYP3A4, CYP4F2, VKORC1)."""

    method: Literal["function", "activity", "none"]
    rules: tuple[PhenotypeRule, ...] = ()
    ranges: tuple[ActivityRange, ...] = ()
    diplotypes: dict[str, str] = Field(
        default_factory=dict, description="Diplotypes whose phenotype the function rules do not give"
    )
    otherwise: str = "Indeterminate"


class GeneDefinition(Frozen):
    """The allele-definition table of one gene."""

    gene: str = Field(pattern=r"^[A-Z0-9-]+$")
    version: str
    source: str
    genome_build: Literal["GRCh38"]
    chromosome: str
    guideline: str = ""
    licence: str = ""
    reference: str = Field(description="Name of the allele that is the reference sequence")
    calling: Literal["diplotype", "lowest_function"] = Field(
        default="diplotype",
        description="lowest_function (DPYD, RYR1): unphased samples are called as the two lowest-"
        "function alleles found, as PharmCAT and CPIC do",
    )
    undocumented_as_reference: bool = Field(
        default=False, description="An allele the definition does not list at a position reads as reference"
    )
    positions: tuple[Position, ...] = Field(min_length=1)
    alleles: tuple[NamedAllele, ...] = Field(min_length=1)
    phenotype: PhenotypeMethod
    skipped_alleles: tuple[str, ...] = Field(default=(), description="Source alleles not callable from a VCF")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        by_id = {p.id: p for p in self.positions}
        if len(by_id) != len(self.positions):
            raise ValueError("position ids must be unique")
        names = [a.name for a in self.alleles]
        if len(set(names)) != len(names):
            raise ValueError("allele names must be unique")
        if self.reference not in names:
            raise ValueError(f"reference allele {self.reference!r} is not defined")
        for allele in self.alleles:
            for pid, value in allele.defining.items():
                if pid not in by_id:
                    raise ValueError(f"{allele.name}: unknown position {pid!r}")
                allowed = {by_id[pid].ref, *by_id[pid].alts}
                values = (value,) if isinstance(value, str) else value
                if not set(values) <= allowed:
                    raise ValueError(f"{allele.name}: {pid} allele {values} not in {allowed}")
        return self

    @property
    def by_id(self) -> dict[str, Position]:
        return {p.id: p for p in self.positions}

    def allele(self, name: str) -> NamedAllele:
        for a in self.alleles:
            if a.name == name:
                return a
        raise KeyError(name)

    def phenotype_of(self, first: str, second: str) -> tuple[str | None, float | None]:
        """Phenotype and activity score of a diplotype given by its two allele names
        (None for a gene without a CPIC phenotype)."""
        a, b = self.allele(first), self.allele(second)
        method = self.phenotype
        if method.method == "none":
            return None, None
        if method.method == "activity":
            if a.activity is None or b.activity is None:  # an allele of unknown activity
                return method.otherwise, None
            score = a.activity + b.activity
            for r in method.ranges:
                if r.holds(score):
                    return r.phenotype, score
            return method.otherwise, score
        named = method.diplotypes.get(f"{first}/{second}") or method.diplotypes.get(f"{second}/{first}")
        if named is not None:
            return named, None
        pair = sorted((a.function, b.function))
        for rule in method.rules:
            if sorted(rule.functions) == pair:
                return rule.phenotype, None
        return method.otherwise, None

    def rank(self, name: str) -> float:
        """How much function an allele keeps (lower = less), to pick the two lowest-function
        alleles of an unphased lowest-function gene: activity value, else a function class."""
        allele = self.allele(name)
        if allele.activity is not None:
            return allele.activity
        text = allele.function.lower()
        for word, value in _FUNCTION_RANK:
            if word in text:
                return value
        return 1.0


# Function words, lowest first (RYR1/CACNA1S: the susceptibility alleles are the "lowest").
_FUNCTION_RANK = (
    ("malignant hyperthermia", 0.0),
    ("no function", 0.0),
    ("decreased", 0.5),
    ("uncertain", 0.9),
    ("unknown", 0.9),
    ("normal", 1.0),
    ("increased", 1.5),
)


def _data(name: str) -> str:
    return resources.files("converters.omics").joinpath("data", name).read_text(encoding="utf-8")


@cache
def load_definition(gene: str) -> GeneDefinition:
    """The shipped definition table of ``gene`` (a panel gene)."""
    if gene not in PANEL:
        raise ConversionError(
            f"no allele definitions for gene {gene!r}; the panel is {', '.join(PANEL)}",
            field="gene",
        )
    name = f"pgx/{gene}.json"
    return parse(GeneDefinition, json.loads(_data(name)), source=f"converters/omics/data/{name}")


def load_panel(genes: tuple[str, ...] | None = None) -> tuple[GeneDefinition, ...]:
    """Definitions of ``genes`` (default: the whole panel), in panel order."""
    wanted = PANEL if genes is None else genes
    unknown = [g for g in wanted if g not in PANEL]
    if unknown:
        raise ConversionError(
            f"unrecognised gene symbol(s) {', '.join(unknown)}; the panel is {', '.join(PANEL)}",
            field="genes",
        )
    return tuple(load_definition(g) for g in PANEL if g in wanted)


@cache
def source_manifest() -> dict[str, object]:
    """Name, version, SHA-256 and licence of the source the shipped tables were generated from."""
    manifest: dict[str, object] = json.loads(_data("pgx/SOURCE.json"))
    return manifest


@cache
def _gene_table() -> dict[str, str]:
    lines = [ln for ln in _data("pharmacogenes.tsv").splitlines() if not ln.startswith("#")]
    return {row["symbol"]: row["hgnc_id"] for row in csv.DictReader(lines, delimiter="\t")}


def known_genes() -> frozenset[str]:
    """HGNC symbols of the pharmacogenes the hub recognises (the panel and PharmCAT's genes)."""
    return frozenset(_gene_table())


def hgnc_id(symbol: str) -> str | None:
    """``HGNC:nnnn`` of a recognised gene symbol, else None."""
    return _gene_table().get(symbol)


def symbol_for_hgnc(ident: str) -> str | None:
    """Symbol of an HGNC id given as ``HGNC:2623`` or ``2623``."""
    key = ident if ident.upper().startswith("HGNC:") else f"HGNC:{ident}"
    for symbol, hid in _gene_table().items():
        if hid.upper() == key.upper():
            return symbol
    return None
