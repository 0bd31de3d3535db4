"""The star-allele caller on genotypes built from the definitions; guideline phenotypes."""

from __future__ import annotations

import random
from collections.abc import Set as AbstractSet
from itertools import combinations_with_replacement

import pytest

from converters.omics.calling import Observed, call_diplotype, compile_gene
from converters.omics.definitions import PANEL, load_definition
from tests.omics.vcfgen import allele_at


def observe(
    gene: str,
    h1: str,
    h2: str,
    *,
    phased: bool = False,
    missing: AbstractSet[str] = frozenset(),
    no_call: AbstractSet[str] = frozenset(),
) -> tuple[Observed, ...]:
    d = load_definition(gene)
    out: list[Observed] = []
    for p in d.positions:
        if p.id in missing:
            out.append(None)
        elif p.id in no_call:
            out.append((None, None, None))
        else:
            out.append((allele_at(d, h1, p.id), allele_at(d, h2, p.id), 0 if phased else None))
    return tuple(out)


def call(gene: str, h1: str, h2: str, **kw: object):  # type: ignore[no-untyped-def]
    return call_diplotype(compile_gene(load_definition(gene)), observe(gene, h1, h2, **kw))  # type: ignore[arg-type]


def _pairs(names: list[str], reference: str) -> list[tuple[str, str]]:
    """Every pair for a small gene; for a large one (G6PD, RYR1) each allele with the reference
    and with itself, and 200 random pairs."""
    pairs = list(combinations_with_replacement(names, 2))
    if len(names) <= 60:
        return pairs
    rng = random.Random(13)
    return [(reference, n) for n in names] + [(n, n) for n in names] + rng.sample(pairs, 200)


@pytest.mark.parametrize("gene", PANEL)
def test_every_phased_pair_is_called_back_exactly(gene: str) -> None:
    d = load_definition(gene)
    compiled = compile_gene(d)
    names = [a.name for a in d.alleles]
    same = _identical_definitions(gene)
    for h1, h2 in _pairs(names, d.reference):
        result = call_diplotype(compiled, observe(gene, h1, h2, phased=True))
        if h1 in same or h2 in same:  # two names, one definition: a tie, reported as such
            assert result.status in ("uncertain", "called"), (gene, h1, h2, result)
            continue
        assert sorted(map(str, [result.first, result.second])) == sorted([h1, h2]), (gene, h1, h2, result)
        assert result.status == "called" and not result.uncertain, (gene, h1, h2, result)


def _identical_definitions(gene: str) -> set[str]:
    d = load_definition(gene)
    seen: dict[str, list[str]] = {}
    for a in d.alleles:
        seen.setdefault(repr(sorted(a.defining.items())), []).append(a.name)
    return {n for names in seen.values() if len(names) > 1 for n in names}


# Diplotype -> (phenotype, activity score) as the CPIC guidelines give them.
GUIDELINE = [
    ("CYP2C19", "*1", "*1", "Normal Metabolizer", None),
    ("CYP2C19", "*1", "*2", "Intermediate Metabolizer", None),
    ("CYP2C19", "*2", "*17", "Intermediate Metabolizer", None),
    ("CYP2C19", "*2", "*3", "Poor Metabolizer", None),
    ("CYP2C19", "*1", "*17", "Rapid Metabolizer", None),
    ("CYP2C19", "*17", "*17", "Ultrarapid Metabolizer", None),
    ("CYP2C19", "*9", "*2", "Likely Poor Metabolizer", None),
    ("CYP2C9", "*1", "*1", "Normal Metabolizer", 2.0),
    ("CYP2C9", "*1", "*2", "Intermediate Metabolizer", 1.5),
    ("CYP2C9", "*1", "*3", "Intermediate Metabolizer", 1.0),
    ("CYP2C9", "*2", "*3", "Poor Metabolizer", 0.5),
    ("CYP2C9", "*3", "*3", "Poor Metabolizer", 0.0),
    ("CYP3A5", "*1", "*3", "Intermediate Metabolizer", None),
    ("CYP3A5", "*3", "*3", "Poor Metabolizer", None),
    ("CYP3A5", "*3", "*7", "Poor Metabolizer", None),
    ("TPMT", "*1", "*3A", "Intermediate Metabolizer", None),
    ("TPMT", "*3A", "*3A", "Poor Metabolizer", None),
    ("NUDT15", "*1", "*3", "Intermediate Metabolizer", None),
    ("NUDT15", "*3", "*3", "Poor Metabolizer", None),
    ("DPYD", "Reference", "c.1129-5923C>G, c.1236G>A (HapB3)", "Intermediate Metabolizer", 1.5),
    ("DPYD", "Reference", "c.1905+1G>A (*2A)", "Intermediate Metabolizer", 1.0),
    ("DPYD", "c.1905+1G>A (*2A)", "c.2846A>T", "Poor Metabolizer", 0.5),
    ("DPYD", "c.1679T>G (*13)", "c.1905+1G>A (*2A)", "Poor Metabolizer", 0.0),
    ("UGT1A1", "*1", "*28", "Intermediate Metabolizer", None),
    ("UGT1A1", "*28", "*28", "Poor Metabolizer", None),
    ("UGT1A1", "*6", "*28", "Poor Metabolizer", None),
    ("SLCO1B1", "*1", "*5", "Decreased Function", None),
    ("SLCO1B1", "*15", "*15", "Poor Function", None),
    ("SLCO1B1", "*1", "*15", "Decreased Function", None),
    ("SLCO1B1", "*1", "*14", "Normal Function", None),
    ("VKORC1", "rs9923231 reference (C)", "rs9923231 variant (T)", "-1639 AG", None),
    ("VKORC1", "rs9923231 variant (T)", "rs9923231 variant (T)", "-1639 AA", None),
    ("CYP3A4", "*1", "*22", None, None),  # no CPIC phenotype in the source tables
]


@pytest.mark.parametrize(("gene", "h1", "h2", "phenotype", "score"), GUIDELINE)
def test_unphased_calls_give_the_guideline_phenotype(
    gene: str, h1: str, h2: str, phenotype: str, score: float | None
) -> None:
    result = call(gene, h1, h2)
    assert sorted([result.first, result.second], key=str) == sorted([h1, h2])
    assert result.phenotype == phenotype
    assert result.activity_score == score


def test_unphased_tpmt_double_heterozygote_is_star1_star3a_and_phase_can_say_otherwise() -> None:
    unphased = call("TPMT", "*3B", "*3C")  # c.460 and c.719 both heterozygous, phase unknown
    assert unphased.diplotype == "*1/*3A"
    trans = call("TPMT", "*3B", "*3C", phased=True)  # in trans on separate haplotypes
    assert trans.diplotype == "*3B/*3C"
    assert trans.phenotype == "Poor Metabolizer"


def test_cyp2c19_reference_genome_is_star38_and_star1_needs_rs3758581() -> None:
    assert call("CYP2C19", "*38", "*38").diplotype == "*38/*38"
    assert call("CYP2C19", "*1", "*38").diplotype == "*1/*38"


def test_missing_positions_make_the_call_uncertain_and_are_named() -> None:
    result = call("CYP2C19", "*1", "*2", missing={"rs4244285"})
    assert result.uncertain
    assert result.missing_positions == ("rs4244285",)
    assert result.diplotype == "*1/*2"  # still explained by rs12769205


def test_alleles_whose_only_position_is_missing_are_untestable_not_reference() -> None:
    result = call("CYP3A5", "*1", "*3", missing={"rs776746"})
    assert result.uncertain
    assert "*3" in result.untestable_alleles
    assert result.missing_positions == ("rs776746",)
    assert "rs776746" in (result.note or "") or "*3" in (result.note or "")


def test_no_calls_are_reported_separately() -> None:
    result = call("TPMT", "*1", "*1", no_call={"rs1800462"})
    assert result.no_call_positions == ("rs1800462",)
    assert result.uncertain


def test_genotype_no_pair_explains_gives_no_diplotype() -> None:
    d = load_definition("TPMT")
    obs = list(observe("TPMT", "*2", "*2"))
    # *2/*2 plus a heterozygous *4 variant: three variant copies on two haplotypes, no pair fits
    i = [p.id for p in d.positions].index("rs1800584")
    obs[i] = ("C", "T", None)
    result = call_diplotype(compile_gene(d), tuple(obs))
    assert result.diplotype is None and result.phenotype is None and result.uncertain
    assert "rs1800584" in (result.note or "")


def test_allele_of_unknown_activity_gives_indeterminate() -> None:
    result = call("CYP2C9", "*1", "*27")
    assert result.diplotype == "*1/*27"
    assert (result.phenotype, result.activity_score) == ("Indeterminate", None)


def test_ambiguous_unphased_cyp2c9_keeps_alternatives() -> None:
    # Four heterozygous core variants of four different alleles: several pairings fit equally.
    d = load_definition("CYP2C9")
    compiled = compile_gene(d)
    obs = []
    het = {"rs1799853", "rs1057910", "rs28371686"}
    for p in d.positions:
        obs.append((p.ref, p.alts[0], None) if p.id in het else (p.ref, p.ref, None))
    result = call_diplotype(compiled, tuple(obs))
    assert result.diplotype is None  # three variants cannot sit on two single-variant alleles


def test_half_call_makes_the_gene_unknown_as_pharmcat_does() -> None:
    d = load_definition("CYP3A5")
    obs = list(observe("CYP3A5", "*3", "*3"))
    i = [p.id for p in d.positions].index("rs776746")
    obs[i] = ("C", None, None)  # 1/. : one copy seen as *3, the other not called
    result = call_diplotype(compile_gene(d), tuple(obs))
    assert result.no_call_positions == ("rs776746",) and result.uncertain
    assert result.status == "unknown" and result.diplotype is None and result.phenotype is None
    assert result.unmatched_positions == ("rs776746",)


def test_phase_sets_constrain_only_within_themselves() -> None:
    d = load_definition("TPMT")
    compiled = compile_gene(d)
    c460 = [p.id for p in d.positions].index("rs1800460")
    c719 = [p.id for p in d.positions].index("rs1142345")
    obs: list[Observed] = [(p.ref, p.ref, None) for p in d.positions]
    obs[c460] = ("C", "T", 1)  # c.460 variant on the second copy of phase set 1
    obs[c719] = ("C", "T", 1)  # c.719 variant on the first copy of the same set: trans
    assert call_diplotype(compiled, tuple(obs)).diplotype == "*3B/*3C"
    obs[c719] = ("T", "C", 1)  # same copy: cis
    assert call_diplotype(compiled, tuple(obs)).diplotype == "*1/*3A"
    obs[c719] = ("C", "T", 2)  # a different phase set says nothing about c.460: as unphased
    assert call_diplotype(compiled, tuple(obs)).diplotype == "*1/*3A"
