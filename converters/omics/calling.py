"""Diplotype calling: observed genotypes at a gene's positions -> the best pair of named alleles.

A pair of named alleles (h1, h2) explains a sample when, at every position observed, the two
alleles seen are what h1 and h2 carry there (each allele carries the reference base wherever
its definition is silent). Phased positions of one phase set must agree with one orientation
of the pair; unphased ones with either. Among the pairs that explain the sample, the call is
the one whose definitions pin the most positions (the reference allele pins all of them), so
that a double heterozygote unphased for TPMT c.460/c.719 is *1/*3A rather than *3B/*3C, as
the guidelines do.

Positions absent from the file or not called for the sample are never taken as reference:
they constrain nothing, the call is marked uncertain and names them, and an allele all of whose
defining positions are missing cannot be called at all (listed as untestable). Ties between
pairs with the same score are reported as alternatives and make the call uncertain.

Hand-written because no Python library calls star alleles from CPIC-style definitions;
PharmCAT does this in Java and is the reference it is checked against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations_with_replacement

from converters.omics.definitions import GeneDefinition

__all__ = ["CompiledGene", "GeneCall", "Observed", "call_diplotype", "compile_gene"]

# One position for one sample: (allele 1, allele 2, phase set); an allele is None when not
# called; the phase set is None for an unphased genotype, else an id shared by the positions
# phased together (VCF PS, or one set per gene when the file gives none).
Observed = tuple[str | None, str | None, int | None] | None


@dataclass(frozen=True)
class GeneCall:
    """The call for one gene and one sample."""

    gene: str
    first: str | None
    second: str | None
    phenotype: str | None
    activity_score: float | None
    uncertain: bool
    missing_positions: tuple[str, ...] = ()
    no_call_positions: tuple[str, ...] = ()
    untestable_alleles: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    note: str | None = None

    @property
    def diplotype(self) -> str | None:
        if self.first is None or self.second is None:
            return None
        return f"{self.first}/{self.second}"


@dataclass
class CompiledGene:
    """A gene's definitions in the shape the caller needs, with a cache of calls made."""

    definition: GeneDefinition
    position_ids: tuple[str, ...]
    allowed: dict[str, tuple[frozenset[str], ...]]  # allele -> allowed bases per position
    defining_index: dict[str, tuple[int, ...]]  # allele -> indices of its defining positions
    score: dict[str, int]
    order: dict[str, int]
    cache: dict[tuple[Observed, ...], GeneCall] = field(default_factory=dict)

    @property
    def gene(self) -> str:
        return self.definition.gene


def _natural(name: str) -> tuple[object, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def compile_gene(definition: GeneDefinition) -> CompiledGene:
    """Precompute per-allele allowed bases and match scores for fast calling."""
    ids = tuple(p.id for p in definition.positions)
    n = len(ids)
    allowed: dict[str, tuple[frozenset[str], ...]] = {}
    defining: dict[str, tuple[int, ...]] = {}
    score: dict[str, int] = {}
    for allele in definition.alleles:
        sets = []
        for pid, pos in zip(ids, definition.positions, strict=True):
            value = allele.defining.get(pid)
            if value is None:
                sets.append(frozenset({pos.ref}))
            else:
                sets.append(frozenset((value,) if isinstance(value, str) else value))
        allowed[allele.name] = tuple(sets)
        defining[allele.name] = tuple(i for i, pid in enumerate(ids) if pid in allele.defining)
        full = allele.pins_all or allele.name == definition.reference
        score[allele.name] = n if full else sum(1 for v in allele.defining.values() if isinstance(v, str))
    # Star alleles in natural order (*2 before *10, *1 before *38); otherwise reference first.
    names = sorted(
        (a.name for a in definition.alleles),
        key=lambda s: (
            not s.startswith("*"),
            s != definition.reference and not s.startswith("*"),
            _natural(s),
        ),
    )
    order = {name: i for i, name in enumerate(names)}
    return CompiledGene(definition, ids, allowed, defining, score, order)


def _compatible(
    s1: tuple[frozenset[str], ...],
    s2: tuple[frozenset[str], ...],
    observed: list[tuple[int, str, str, int | None]],
) -> bool:
    """Does the pair explain every site? Within a phase set one orientation must fit all."""
    orientations: dict[int, tuple[bool, bool]] = {}
    for i, x, y, phase_set in observed:
        a, b = s1[i], s2[i]
        fits = x in a and y in b
        fits_swapped = y in a and x in b
        if phase_set is None:
            if not (fits or fits_swapped):
                return False
            continue
        straight, swapped = orientations.get(phase_set, (True, True))
        straight, swapped = straight and fits, swapped and fits_swapped
        if not (straight or swapped):
            return False
        orientations[phase_set] = (straight, swapped)
    return True


def call_diplotype(gene: CompiledGene, observed: tuple[Observed, ...]) -> GeneCall:
    """Call one sample's diplotype from its genotypes at ``gene.position_ids`` (same order)."""
    cached = gene.cache.get(observed)
    if cached is not None:
        return cached
    result = _call(gene, observed)
    gene.cache[observed] = result
    return result


def _call(gene: CompiledGene, observed: tuple[Observed, ...]) -> GeneCall:
    ids = gene.position_ids
    missing: list[str] = []
    no_call: list[str] = []
    sites: list[tuple[int, str, str, int | None]] = []
    half: list[tuple[int, str]] = []
    for i, obs in enumerate(observed):
        if obs is None:
            missing.append(ids[i])
            continue
        x, y, phased = obs
        if x is None and y is None:
            no_call.append(ids[i])
        elif x is None or y is None:
            no_call.append(ids[i])
            half.append((i, x if x is not None else y))  # type: ignore[arg-type]
        else:
            sites.append((i, x, y, phased))
    half_ids = {ids[i] for i, _ in half}  # half calls still say something about the alleles
    unknown = set(missing) | (set(no_call) - half_ids)
    unknown_idx = {i for i, pid in enumerate(ids) if pid in unknown}
    untestable = tuple(
        name for name, idx in gene.defining_index.items() if idx and all(i in unknown_idx for i in idx)
    )
    # An allele can only be one of the pair if, at every site, one of the two copies fits it.
    candidates = [
        name
        for name in gene.allowed
        if name not in untestable
        and all(x in gene.allowed[name][i] or y in gene.allowed[name][i] for i, x, y, _ in sites)
    ]
    best: list[tuple[str, str]] = []
    best_score = -1
    for h1, h2 in combinations_with_replacement(candidates, 2):
        s1, s2 = gene.allowed[h1], gene.allowed[h2]
        if not _compatible(s1, s2, sites):
            continue
        if any(base not in s1[i] and base not in s2[i] for i, base in half):
            continue
        score = gene.score[h1] + gene.score[h2]
        if score > best_score:
            best, best_score = [(h1, h2)], score
        elif score == best_score:
            best.append((h1, h2))
    missing_all = tuple(missing) + tuple(no_call)
    uncertain = bool(missing_all)
    if not best:
        seen = ", ".join(
            f"{ids[i]} {x}/{y}"
            for i, x, y, _ in sites
            if x != y or x not in gene.allowed[gene.definition.reference][i]
        )
        return GeneCall(
            gene.gene,
            None,
            None,
            None,
            None,
            True,
            tuple(missing),
            tuple(no_call),
            untestable,
            note=f"no pair of named alleles explains the genotypes ({seen or 'see positions'})",
        )
    pairs = [tuple(sorted(p, key=gene.order.__getitem__)) for p in best]
    h1, h2 = pairs[0]
    phenotype: str | None
    activity: float | None
    phenotype, activity = gene.definition.phenotype_of(h1, h2)
    alternatives = tuple(f"{a}/{b}" for a, b in pairs[1:])
    if alternatives:
        uncertain = True
        others = {gene.definition.phenotype_of(a, b)[0] for a, b in pairs[1:]}
        if others != {phenotype}:
            phenotype, activity = None, None
    note = None
    if untestable:
        note = "alleles not testable (defining positions missing): " + ", ".join(untestable)
    return GeneCall(
        gene.gene,
        h1,
        h2,
        phenotype,
        activity,
        uncertain,
        tuple(missing),
        tuple(no_call),
        untestable,
        alternatives,
        note,
    )
