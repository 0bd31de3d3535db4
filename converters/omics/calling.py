"""Diplotype calling: observed genotypes at a gene's positions -> named alleles, as PharmCAT calls them.

Standard genes: a pair of named alleles (h1, h2) explains a sample when, at every position
observed, the two alleles seen are what h1 and h2 carry there (each allele carries the reference
base wherever its definition is silent). Phased positions of one phase set must agree with one
orientation of the pair; unphased ones with either. Among the pairs that explain the sample, the
call is the one whose definitions pin the most positions (the reference allele pins all of them);
pairs with the same score are a tie, reported as alternatives, never resolved by a guess.

Lowest-function genes (DPYD, RYR1; ``GeneDefinition.calling``): the variants of each copy are
covered by named alleles, and a copy carrying several is a combination ``[A + B]`` whose function
is its lowest. When the copies cannot be told apart (two or more heterozygous positions not phased
together), every allele found is listed (``haplotypes``) and the diplotype is the two lowest-
function ones, which is CPIC's and PharmCAT's rule; more than two found makes the call uncertain.

What makes a call other than certain (``status``):

* ``not_tested``: no position of the gene was read; no diplotype, no phenotype.
* ``unknown``: no diplotype: a non-reference allele that no named allele (or pair) explains, an
  allele the definition does not know at one of its positions, or a half-called genotype. The
  positions concerned are named (``unmatched_positions``).
* ``uncertain``: a diplotype, but some defining position was absent or not called (so another
  allele could hide there), alleles tie, or undocumented alleles were read as reference (the
  genes where PharmCAT does so).
* ``called``: every defining position was read and one answer fits.

Hand-written because no Python library calls star alleles from CPIC-style definitions;
PharmCAT does this in Java and is the reference it is checked against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from typing import Literal

from converters.omics.definitions import GeneDefinition

__all__ = [
    "CallStatus",
    "CompiledGene",
    "GeneCall",
    "Observed",
    "Sparse",
    "call_diplotype",
    "call_sparse",
    "compile_gene",
    "sparse_of",
]

# One position for one sample: (allele 1, allele 2, phase set); an allele is None when not
# called; the phase set is None for an unphased genotype, else an id shared by the positions
# phased together (VCF PS, or one set per gene when the file gives none).
Observed = tuple[str | None, str | None, int | None] | None
CallStatus = Literal["called", "uncertain", "unknown", "not_tested"]


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
    status: CallStatus = "called"
    unmatched_positions: tuple[str, ...] = ()
    haplotypes: tuple[str, ...] = ()

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
    known: tuple[frozenset[str], ...]  # bases the definition knows at each position
    needs: dict[str, tuple[int, ...]]  # allele -> positions where it does not allow the reference
    variant_alleles: tuple[tuple[str, frozenset[tuple[int, str]]], ...]  # largest first
    by_need: dict[int, tuple[str, ...]] = field(default_factory=dict)  # position -> alleles needing it
    no_need: tuple[str, ...] = ()  # alleles that allow the reference everywhere
    cache: dict[Sparse, GeneCall] = field(default_factory=dict)
    untestable: dict[frozenset[int], tuple[str, ...]] = field(default_factory=dict)

    @property
    def gene(self) -> str:
        return self.definition.gene


def _natural(name: str) -> tuple[object, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name))


def compile_gene(definition: GeneDefinition) -> CompiledGene:
    """Precompute per-allele allowed bases and match scores for fast calling."""
    ids = tuple(p.id for p in definition.positions)
    n = len(ids)
    allowed: dict[str, tuple[frozenset[str], ...]] = {}
    defining: dict[str, tuple[int, ...]] = {}
    score: dict[str, int] = {}
    variants: list[tuple[str, frozenset[tuple[int, str]]]] = []
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
        alts = frozenset(
            (i, v)
            for i, pid in enumerate(ids)
            if isinstance(v := allele.defining.get(pid), str) and v != definition.positions[i].ref
        )
        if alts:
            variants.append((allele.name, alts))
    # Star alleles in natural order (*1 before *2 before *10, *1 before *38); otherwise the
    # reference first, as PharmCAT writes them.
    names = sorted(
        (a.name for a in definition.alleles),
        key=lambda s: (
            not s.startswith("*"),
            s != definition.reference and not s.startswith("*"),
            _natural(s),
        ),
    )
    order = {name: i for i, name in enumerate(names)}
    known = tuple(frozenset({p.ref, *p.alts}) for p in definition.positions)
    variants.sort(key=lambda v: (-len(v[1]), order[v[0]]))
    needs = {
        name: tuple(i for i, pos in enumerate(definition.positions) if pos.ref not in sets[i])
        for name, sets in allowed.items()
    }
    by_need: dict[int, list[str]] = {}
    for name, idx in needs.items():
        for i in idx:
            by_need.setdefault(i, []).append(name)
    return CompiledGene(
        definition,
        ids,
        allowed,
        defining,
        score,
        order,
        known,
        needs,
        tuple(variants),
        {i: tuple(v) for i, v in by_need.items()},
        tuple(name for name, idx in needs.items() if not idx),
    )


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
    return call_sparse(gene, sparse_of(gene, observed))


def call_sparse(gene: CompiledGene, sparse: Sparse) -> GeneCall:
    """Call one sample's diplotype from its genotypes in sparse form (see ``Sparse``)."""
    cached = gene.cache.get(sparse)
    if cached is not None:
        return cached
    result = _call(gene, sparse)
    gene.cache[sparse] = result
    return result


@dataclass
class _Reading:
    """One sample's genotypes at a gene, sorted into what was read and what was not; ``sites``
    holds only the positions that are not homozygous reference."""

    sites: list[tuple[int, str, str, int | None]]
    missing: list[str]
    no_call: list[str]
    half: list[str]
    undocumented: list[str]
    n_read: int = 0
    unknown_idx: frozenset[int] = frozenset()


@dataclass
class _Outcome:
    """What one of the two calling rules found."""

    pair: tuple[str, str] | None
    phenotype: str | None = None
    activity: float | None = None
    alternatives: tuple[str, ...] = ()
    ambiguous: bool = False
    note: str | None = None
    unmatched: tuple[str, ...] = ()
    haplotypes: tuple[str, ...] = ()


# A sample's genotypes at a gene in sparse form: the indices of positions absent from the file, and
# the positions that are not homozygous reference (no-calls included); every other position was
# read as homozygous reference. This is what the VCF reader builds, so that calling costs in the
# variants a sample carries, not in the size of the definitions.
Sparse = tuple[tuple[int, ...], tuple[tuple[int, str | None, str | None, int | None], ...]]


def sparse_of(gene: CompiledGene, observed: tuple[Observed, ...]) -> Sparse:
    """The sparse form of a full row of genotypes (one per position, in definition order)."""
    missing = tuple(i for i, obs in enumerate(observed) if obs is None)
    ref = [p.ref for p in gene.definition.positions]
    sites = tuple(
        (i, obs[0], obs[1], obs[2])
        for i, obs in enumerate(observed)
        if obs is not None and not (obs[0] == ref[i] and obs[1] == ref[i])
    )
    return missing, sites


def _read(gene: CompiledGene, sparse: Sparse) -> _Reading:
    ids, ref_of = gene.position_ids, gene.definition.positions
    missing_idx, sites = sparse
    reading = _Reading([], [ids[i] for i in missing_idx], [], [], [])
    as_reference = gene.definition.undocumented_as_reference
    unknown = set(missing_idx)
    for i, x, y, phased in sites:
        if x is None and y is None:
            reading.no_call.append(ids[i])
            unknown.add(i)
            continue
        if x is None or y is None:
            reading.half.append(ids[i])
            continue
        if x not in gene.known[i] or y not in gene.known[i]:
            reading.undocumented.append(ids[i])
            if not as_reference:
                continue
            x = x if x in gene.known[i] else ref_of[i].ref
            y = y if y in gene.known[i] else ref_of[i].ref
        reading.sites.append((i, x, y, phased))
    reading.n_read = len(ids) - len(unknown) - len(reading.half)
    reading.unknown_idx = frozenset(unknown)
    return reading


def _call(gene: CompiledGene, sparse: Sparse) -> GeneCall:
    r = _read(gene, sparse)
    base = {
        "missing_positions": tuple(r.missing),
        "no_call_positions": tuple(r.no_call + r.half),
    }
    if r.n_read == 0 and not r.half:
        return GeneCall(
            gene.gene, None, None, None, None, True, **base, status="not_tested",
            note="not tested: no genotype read at any position of the gene",
        )  # fmt: skip
    if r.half or (r.undocumented and not gene.definition.undocumented_as_reference):
        parts = []
        if r.undocumented:
            parts.append(f"alleles the definition does not list at {', '.join(r.undocumented)}")
        if r.half:
            parts.append(f"half-called genotypes at {', '.join(r.half)}")
        return GeneCall(
            gene.gene, None, None, None, None, True, **base, status="unknown",
            unmatched_positions=tuple(r.undocumented + r.half), note="not called: " + "; ".join(parts),
        )  # fmt: skip
    untestable = _untestable(gene, r.unknown_idx)
    if gene.definition.calling == "lowest_function":
        result = _call_lowest_function(gene, r, untestable)
    else:
        result = _call_standard(gene, r, untestable)
    notes = [result.note] if result.note else []
    if r.undocumented:
        notes.append(f"alleles the definition does not list at {', '.join(r.undocumented)} read as reference")
    if untestable:
        notes.append("alleles not testable (defining positions missing): " + ", ".join(untestable))
    first, second = result.pair or (None, None)
    status: CallStatus
    if first is None:
        status = "unknown"
    elif r.missing or r.no_call or r.undocumented or result.ambiguous:
        status = "uncertain"
    else:
        status = "called"
    return GeneCall(
        gene.gene,
        first,
        second,
        result.phenotype,
        result.activity,
        status != "called",
        **base,
        untestable_alleles=untestable,
        alternatives=result.alternatives,
        note="; ".join(notes) or None,
        status=status,
        unmatched_positions=result.unmatched,
        haplotypes=result.haplotypes,
    )


def _untestable(gene: CompiledGene, unknown: frozenset[int]) -> tuple[str, ...]:
    """Alleles all of whose defining positions were not read (cached: files miss the same ones)."""
    if not unknown:
        return ()
    cached = gene.untestable.get(unknown)
    if cached is None:
        cached = tuple(
            name for name, idx in gene.defining_index.items() if idx and all(i in unknown for i in idx)
        )
        gene.untestable[unknown] = cached
    return cached


def _unexplained(gene: CompiledGene, sites: list[tuple[int, str, str, int | None]]) -> list[str]:
    """Positions with a non-reference allele: those no allele carries first, else all of them."""
    ref = gene.allowed[gene.definition.reference]
    variant = [(i, b) for i, x, y, _ in sites for b in {x, y} if b not in ref[i]]
    carried = {(i, b) for _, alts in gene.variant_alleles for i, b in alts}
    lone = sorted({gene.position_ids[i] for i, b in variant if (i, b) not in carried})
    return lone or sorted({gene.position_ids[i] for i, _ in variant})


def _call_standard(gene: CompiledGene, r: _Reading, untestable: tuple[str, ...]) -> _Outcome:
    # Only sites with a non-reference allele tell alleles apart: an allele that needs a variant
    # where the sample was read homozygous reference is out; one needing it where the position
    # was not read is kept (it cannot be excluded).
    sites = r.sites
    seen = {i: (x, y) for i, x, y, _ in sites}
    open_idx = set(seen) | r.unknown_idx
    pool = set(gene.no_need)
    for i in seen:
        pool.update(gene.by_need.get(i, ()))
    for i in r.unknown_idx:
        pool.update(gene.by_need.get(i, ()))
    candidates = [
        name
        for name in sorted(pool, key=gene.order.__getitem__)
        if name not in untestable
        and all(i in open_idx for i in gene.needs[name])
        and all(x in gene.allowed[name][i] or y in gene.allowed[name][i] for i, x, y, _ in sites)
    ]
    best: list[tuple[str, str]] = []
    best_score = -1
    for h1, h2 in combinations_with_replacement(candidates, 2):
        s1, s2 = gene.allowed[h1], gene.allowed[h2]
        if not _compatible(s1, s2, sites):
            continue
        score = gene.score[h1] + gene.score[h2]
        if score > best_score:
            best, best_score = [(h1, h2)], score
        elif score == best_score:
            best.append((h1, h2))
    if not best:
        where = _unexplained(gene, sites)
        return _Outcome(
            None,
            unmatched=tuple(where),
            note=f"no pair of named alleles explains the genotypes at {', '.join(where)}",
        )
    pairs = [tuple(sorted(p, key=gene.order.__getitem__)) for p in best]
    pairs.sort(key=lambda p: (gene.order[p[0]], gene.order[p[1]]))
    h1, h2 = pairs[0]
    phenotype, activity = gene.definition.phenotype_of(h1, h2)
    alternatives = [f"{a}/{b}" for a, b in pairs[1:]]
    if alternatives:
        others = {gene.definition.phenotype_of(a, b) for a, b in pairs[1:]}
        if others != {(phenotype, activity)}:
            phenotype, activity = None, None
    note = f"tie between {len(pairs)} diplotypes" if alternatives else None
    return _Outcome((h1, h2), phenotype, activity, tuple(alternatives), bool(alternatives), note)


# --- lowest-function genes (DPYD, RYR1) ------------------------------------------------------------


def _cover(gene: CompiledGene, variants: dict[tuple[int, str], int]) -> tuple[list[str], list[str]]:
    """Named alleles covering a multiset of (position, base) variants, largest alleles first;
    returns (alleles, with repeats, and the positions of variants no allele covers)."""
    left = dict(variants)
    found: list[str] = []
    for name, alts in gene.variant_alleles:
        times = min(left.get(v, 0) for v in alts)
        for _ in range(times):
            found.append(name)
            for v in alts:
                left[v] -= 1
    rest = sorted({gene.position_ids[i] for (i, _), n in left.items() if n > 0})
    return found, rest


def _strand_name(gene: CompiledGene, alleles: list[str]) -> str:
    if not alleles:
        return gene.definition.reference
    if len(alleles) == 1:
        return alleles[0]
    return "[" + " + ".join(sorted(alleles, key=_natural)) + "]"


def _lowest(gene: CompiledGene, alleles: list[str]) -> str:
    """The allele of a copy that sets its function: the lowest-function one."""
    if not alleles:
        return gene.definition.reference
    return min(alleles, key=lambda a: (gene.definition.rank(a), _natural(a)))


def _pair_order(gene: CompiledGene, a: str, b: str) -> tuple[str, str]:
    def key(s: str) -> tuple[object, ...]:
        return (s != gene.definition.reference, s.startswith("["), _natural(s))

    return (a, b) if key(a) <= key(b) else (b, a)


def _call_lowest_function(gene: CompiledGene, r: _Reading, untestable: tuple[str, ...]) -> _Outcome:
    ref = gene.allowed[gene.definition.reference]
    het_units: set[object] = set()
    for i, x, y, ps in r.sites:
        if x != y:
            het_units.add(("site", i) if ps is None else ("set", ps))
    d = gene.definition
    if len(het_units) <= 1:  # effectively phased: each copy's variants are known
        copies: list[dict[tuple[int, str], int]] = [{}, {}]
        for i, x, y, _ in r.sites:
            for k, base in enumerate((x, y)):
                if base not in ref[i]:
                    copies[k][(i, base)] = 1
        covered = [_cover(gene, c) for c in copies]
        rest = sorted({p for _, left in covered for p in left})
        if rest:
            return _Outcome(
                None, unmatched=tuple(rest), note=f"variants no named allele covers at {', '.join(rest)}"
            )
        names = [_strand_name(gene, found) for found, _ in covered]
        lows = [_lowest(gene, found) for found, _ in covered]
        phenotype, activity = d.phenotype_of(lows[0], lows[1])
        return _Outcome(_pair_order(gene, names[0], names[1]), phenotype, activity)
    counts: dict[tuple[int, str], int] = {}
    for i, x, y, _ in r.sites:
        for base in (x, y):
            if base not in ref[i]:
                counts[(i, base)] = counts.get((i, base), 0) + 1
    found, rest = _cover(gene, counts)
    if rest:
        return _Outcome(
            None, unmatched=tuple(rest), note=f"variants no named allele covers at {', '.join(rest)}"
        )
    ranked = sorted(found, key=lambda a: (d.rank(a), _natural(a)))
    lows = (ranked + [d.reference, d.reference])[:2]
    phenotype, activity = d.phenotype_of(lows[0], lows[1])
    listed = sorted(found, key=_natural)
    note = (
        "unphased: alleles found " + ", ".join(listed) + "; diplotype is the two lowest-function (CPIC rule)"
    )
    return _Outcome(
        _pair_order(gene, lows[0], lows[1]),
        phenotype,
        activity,
        ambiguous=len(found) > 2,
        note=note,
        haplotypes=tuple(listed),
    )
