"""Write small test VCFs from named alleles, so tests know the truth they check against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pysam

from converters.omics.definitions import GeneDefinition, load_panel

_DEFINING: dict[tuple[int, str], dict[str, str | tuple[str, ...]]] = {}  # definitions are cached

CHROMOSOMES = ("1", "2", "4", "6", "7", "10", "12", "13", "16", "19", "X")
HEADER_38 = [
    "##fileformat=VCFv4.2",
    "##reference=GRCh38",
    *[f"##contig=<ID=chr{c},assembly=GRCh38>" for c in CHROMOSOMES],
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
]


def allele_at(definition: GeneDefinition, allele: str, position_id: str) -> str:
    """The base a named allele carries at a position (first choice where it allows several)."""
    key = (id(definition), allele)
    if key not in _DEFINING:
        _DEFINING[key] = dict(definition.allele(allele).defining)
    value = _DEFINING[key].get(position_id)
    if value is None:
        return definition.by_id[position_id].ref
    return value if isinstance(value, str) else value[0]


def gt(definition: GeneDefinition, position_id: str, h1: str, h2: str, phased: bool) -> str:
    pos = definition.by_id[position_id]
    alleles = [pos.ref, *pos.alts]
    a = alleles.index(allele_at(definition, h1, position_id))
    b = alleles.index(allele_at(definition, h2, position_id))
    return f"{a}{'|' if phased else '/'}{b}"


def write_vcf(
    path: Path,
    samples: dict[str, dict[str, tuple[str, str]]],
    *,
    phased: bool = False,
    header: Sequence[str] = HEADER_38,
    drop: frozenset[str] = frozenset(),
    no_call: dict[str, set[str]] | None = None,
    extra_lines: Sequence[str] = (),
    bgzip: bool = False,
) -> Path:
    """A VCF where ``samples[name][gene] = (allele1, allele2)`` (reference when a gene is absent).

    ``drop`` leaves positions (ids) out of the file; ``no_call[sample]`` writes ``./.`` there.
    """
    names = list(samples)
    rows: list[tuple[str, int, str]] = []
    for d in load_panel():
        for p in d.positions:
            if p.id in drop:
                continue
            gts = []
            for s in names:
                h1, h2 = samples[s].get(d.gene, (d.reference, d.reference))
                if no_call and p.id in no_call.get(s, set()):
                    gts.append("./.")
                else:
                    gts.append(gt(d, p.id, h1, h2, phased))
            line = "\t".join(
                [
                    d.chromosome,
                    str(p.pos),
                    p.id,
                    p.ref,
                    ",".join(p.alts),
                    ".",
                    "PASS",
                    ".",
                    "GT",
                    *gts,
                ]
            )
            rows.append((d.chromosome, p.pos, line))
    order = {f"chr{c}": i for i, c in enumerate(CHROMOSOMES)}
    rows.sort(key=lambda r: (order[r[0]], r[1]))
    text = (
        "\n".join(
            [
                *header,
                "\t".join(
                    [
                        "#CHROM",
                        "POS",
                        "ID",
                        "REF",
                        "ALT",
                        "QUAL",
                        "FILTER",
                        "INFO",
                        "FORMAT",
                        *names,
                    ]
                ),
            ]
            + [r[2] for r in rows]
            + list(extra_lines)
        )
        + "\n"
    )
    if bgzip:
        plain = path.with_suffix("")
        plain.write_text(text)
        pysam.tabix_compress(str(plain), str(path), force=True)
        plain.unlink()
    else:
        path.write_text(text)
    return path


# --- scenario VCFs, built the way PharmCAT's TestVcfBuilder builds its test files -------------------

# A variant given by its coordinates, for a position the shipped definitions do not have.
Site = tuple[str, int, str, str]  # chrom, pos, ref, alt


def write_scenarios(path: Path, samples: dict[str, Scenario], *, drop: frozenset[str] = frozenset()) -> Path:
    """One sample per scenario. A scenario writes every position of the genes it names as
    reference (PharmCAT's ``reference(gene)``), then its genotypes over them; positions of genes it
    does not name, and ``missing`` ones, are ``./.`` for that sample (not read). ``drop`` leaves
    definition positions (ids) out of the file."""
    panel = {d.gene: d for d in load_panel()}
    rows: dict[tuple[str, int], dict[str, object]] = {}
    for d in panel.values():
        for p in d.positions:
            if p.id not in drop:
                rows[(d.chromosome, p.pos)] = {"id": p.id, "ref": p.ref, "alts": list(p.alts), "gene": d.gene}
    for sc in samples.values():
        for _, where, _, _ in sc.variants:
            if not isinstance(where, str):
                chrom, pos, ref, alt = where
                row = rows.setdefault((chrom, pos), {"id": ".", "ref": ref, "alts": [], "gene": sc.genes[0]})
                if alt not in row["alts"]:  # type: ignore[operator]
                    row["alts"].append(alt)  # type: ignore[union-attr,attr-defined]
    by_id = {(r["gene"], r["id"]): key for key, r in rows.items()}
    names = list(samples)
    calls: dict[tuple[str, int], list[str]] = {key: [] for key in rows}
    for name in names:
        sc = samples[name]
        sep = "|" if sc.phased else "/"
        genotypes: dict[tuple[str, int], tuple[str, str]] = {}
        for gene in sc.genes:
            d = panel[gene]
            h1, h2 = sc.pairs.get(gene, (d.reference, d.reference))
            for p in d.positions:
                if p.id not in drop:
                    genotypes[(d.chromosome, p.pos)] = (allele_at(d, h1, p.id), allele_at(d, h2, p.id))
        for gene, where, a, b in sc.variants:
            key = by_id[(gene, where)] if isinstance(where, str) else (where[0], where[1])
            genotypes[key] = (a, b)
        for gene, where in sc.missing:
            genotypes.pop(by_id[(gene, where)], None)
        for key, row in rows.items():
            if key not in genotypes:
                calls[key].append(f".{sep}.")
                continue
            alleles = [row["ref"], *row["alts"]]  # type: ignore[misc]
            idx = []
            for base in genotypes[key]:
                ref = str(row["ref"])
                if base not in alleles and len(base) == 1 and len(ref) > 1:  # SNV at a longer REF's 1st base
                    base = base + ref[1:]
                if base not in alleles:  # an allele the definition does not list
                    row["alts"].append(base)  # type: ignore[union-attr,attr-defined]
                    alleles.append(base)
                idx.append(str(alleles.index(base)))
            calls[key].append(sep.join(idx))
    order = {f"chr{c}": i for i, c in enumerate(CHROMOSOMES)}
    lines = [
        *HEADER_38,
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *names]),
    ]
    for chrom, pos in sorted(rows, key=lambda k: (order[k[0]], k[1])):
        row = rows[(chrom, pos)]
        alts = ",".join(row["alts"]) or "."  # type: ignore[arg-type]
        fixed = [chrom, str(pos), str(row["id"]), str(row["ref"]), alts, ".", "PASS", ".", "GT"]
        lines.append("\t".join(fixed + calls[(chrom, pos)]))
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class Scenario:
    """Genes written (all positions reference unless a pair or a variant says otherwise), named
    allele pairs per gene, genotypes at positions ``(gene, rsid or Site, base1, base2)``, positions
    left out, and whether the genotypes are phased."""

    genes: tuple[str, ...]
    variants: tuple[tuple[str, str | Site, str, str], ...] = ()
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    missing: tuple[tuple[str, str], ...] = ()
    phased: bool = False
