"""Allele-definition tables of the pharmacogene panel, loaded from versioned package data.

Each ``data/pgx/<GENE>.json`` holds, for one gene on GRCh38: the positions (rsid, position,
VCF ref and alts), the named alleles (star alleles) with the alleles they carry at their core
positions, each allele's function and activity value, and the guideline's rule that turns
two functions (or an activity score) into a phenotype. A named allele carries the reference
base at every position it does not list; the reference allele, and alleles marked
``pins_all``, are fully specified, which is what the caller's match score counts.

No library ships CPIC/PharmVar definitions for Python, hence these small curated tables.
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
]

PANEL = ("CYP2C19", "CYP2C9", "CYP3A5", "DPYD", "NUDT15", "SLCO1B1", "TPMT", "UGT1A1", "VKORC1")


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
    min: float
    max: float
    phenotype: str


class PhenotypeMethod(Frozen):
    method: Literal["function", "activity"]
    rules: tuple[PhenotypeRule, ...] = ()
    ranges: tuple[ActivityRange, ...] = ()
    otherwise: str = "Indeterminate"


class GeneDefinition(Frozen):
    """The allele-definition table of one gene."""

    gene: str = Field(pattern=r"^[A-Z0-9-]+$")
    version: str
    source: str
    genome_build: Literal["GRCh38"]
    chromosome: str
    guideline: str = ""
    reference: str = Field(description="Name of the allele that is the reference sequence")
    positions: tuple[Position, ...] = Field(min_length=1)
    alleles: tuple[NamedAllele, ...] = Field(min_length=1)
    phenotype: PhenotypeMethod

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

    def phenotype_of(self, first: str, second: str) -> tuple[str, float | None]:
        """Phenotype and activity score of a diplotype given by its two allele names."""
        a, b = self.allele(first), self.allele(second)
        method = self.phenotype
        if method.method == "activity":
            if a.activity is None or b.activity is None:  # an allele of unknown activity
                return method.otherwise, None
            score = a.activity + b.activity
            for r in method.ranges:
                if r.min - 1e-9 <= score <= r.max + 1e-9:
                    return r.phenotype, score
            return method.otherwise, score
        pair = sorted((a.function, b.function))
        for rule in method.rules:
            if sorted(rule.functions) == pair:
                return rule.phenotype, None
        return method.otherwise, None


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
