"""Write small test VCFs from named alleles, so tests know the truth they check against."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pysam

from converters.omics.definitions import GeneDefinition, load_panel

HEADER_38 = [
    "##fileformat=VCFv4.2",
    "##reference=GRCh38",
    *[f"##contig=<ID=chr{c},assembly=GRCh38>" for c in ("1", "2", "6", "7", "10", "12", "13", "16")],
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
]


def allele_at(definition: GeneDefinition, allele: str, position_id: str) -> str:
    """The base a named allele carries at a position (first choice where it allows several)."""
    pos = definition.by_id[position_id]
    value = definition.allele(allele).defining.get(position_id)
    if value is None:
        return pos.ref
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
    order = {f"chr{c}": i for i, c in enumerate(["1", "2", "6", "7", "10", "12", "13", "16"])}
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
