"""Read a VCF (plain or bgzipped, one or many samples) with cyvcf2 and call the panel's diplotypes.

The genome build is checked before any call is made: the header's ``##reference``, the contigs'
``assembly`` and ``length`` attributes, and the REF bases at the panel positions. A file on
another build is refused (``ConversionError``); one that says nothing is read with a warning and
the REF check decides. Every data line is used (a panel position), skipped (any other position)
or rejected (malformed, REF disagreeing with GRCh38, several records for one position);
the report counts them. A bgzipped file with a tabix/CSI index is read over the panel's
regions only. Phased genotypes keep their phase set (``PS``; one set per gene without it).

Alleles are matched to the definitions by the variant they spell, not by the text: a REF/ALT pair
is right-trimmed of the bases both share (``CAT>CATAT`` is ``C>CAT``), and an indel written at
another anchor in a repeat (left- or right-aligned) is recognised by rebuilding the local
sequence from the two REFs (``_same_edit``). An allele the definition does not list is passed on
as ``?ALT`` so the caller can name the position.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from converters.omics.calling import CompiledGene, GeneCall, Sparse, call_sparse, compile_gene
from converters.omics.definitions import GeneDefinition, Position, load_panel
from converters.omics.report import ImportReport
from interop.errors import ConversionError, MissingExtraError

if TYPE_CHECKING:
    from cyvcf2 import VCF, Variant

__all__ = ["PanelGenotypes", "VcfCalls", "call_vcf", "detect_build", "read_panel_genotypes"]

log = logging.getLogger(__name__)

# Contig lengths that tell GRCh37 from GRCh38 (same names with or without "chr").
_LENGTHS = {
    "1": (249250621, 248956422),
    "2": (243199373, 242193529),
    "4": (191154276, 190214555),
    "6": (171115067, 170805979),
    "7": (159138663, 159345973),
    "10": (135534747, 133797422),
    "12": (133851895, 133275309),
    "13": (115169878, 114364328),
    "16": (90354753, 90338345),
    "19": (59128983, 58617616),
    "22": (51304566, 50818468),
    "X": (155270560, 156040895),
}
_OTHER_BUILD = re.compile(r"GRCh37|hg19|b37|v37|hs37|NCBI3[67]|hg18|GRCh36", re.IGNORECASE)
_BUILD_38 = re.compile(r"GRCh38|hg38|hs38", re.IGNORECASE)
_CONTIG = re.compile(r"^##contig=<(.*)>$")


def _chrom(name: str) -> str:
    return name[3:] if name.lower().startswith("chr") else name


def detect_build(header: str) -> tuple[str | None, str]:
    """``("GRCh38" | "other" | None, evidence)`` from a VCF header's text."""
    for line in header.splitlines():
        if line.startswith("##reference=") or line.startswith("##assembly="):
            value = line.split("=", 1)[1]
            if _OTHER_BUILD.search(value):
                return "other", line
            if _BUILD_38.search(value):
                return "GRCh38", line
        m = _CONTIG.match(line)
        if m:
            attrs = dict(kv.split("=", 1) for kv in re.split(r",(?=\w+=)", m.group(1)) if "=" in kv)
            assembly = attrs.get("assembly", "")
            if _OTHER_BUILD.search(assembly):
                return "other", line
            length = attrs.get("length")
            known = _LENGTHS.get(_chrom(attrs.get("ID", "")))
            if known and length and length.isdigit():
                if int(length) == known[0]:
                    return "other", f"{line} (GRCh37 length)"
                if int(length) == known[1]:
                    return "GRCh38", line
            if _BUILD_38.search(assembly):
                return "GRCh38", line
    return None, "no ##reference, contig assembly or known contig length in the header"


@dataclass
class _Site:
    """One panel record: allele strings, and per sample the allele of each copy (None = '.')."""

    def merge(self, other: _Site, ref: str) -> _Site:
        """Two records of one position, copy by copy: a variant wins over the reference, two
        different variants on one copy (or a no-call) make that copy unread; phase only if both."""
        first = [_merge_base(a, b, ref) for a, b in zip(self.first, other.first, strict=True)]
        second = [_merge_base(a, b, ref) for a, b in zip(self.second, other.second, strict=True)]
        return _Site(
            first,
            second,
            [p if p == q else None for p, q in zip(self.phase, other.phase, strict=True)],
            np.array([a == ref and b == ref for a, b in zip(first, second, strict=True)], dtype=bool),
        )

    first: list[str | None]
    second: list[str | None]
    phase: list[int | None]  # phase set of a phased genotype (PS, or 0 without PS), else None
    homref: np.ndarray  # per sample: both copies read as the reference

    @classmethod
    def from_array(cls, alleles: list[str], gt: np.ndarray, ps: np.ndarray | None) -> _Site:
        # Allele index -> allele string, vectorised: -1 (no-call) and -2 (haploid: no second
        # copy, so no diplotype) both become None.
        lookup = np.array([*alleles, None, None], dtype=object)
        n = len(alleles)

        def strings(column: np.ndarray) -> list[str | None]:
            idx = column.astype(np.int64)
            idx = np.where(idx == -1, n, np.where(idx < -1, n + 1, idx))
            return list(lookup[idx].tolist())

        sets = ps.reshape(-1).tolist() if ps is not None else [0] * len(gt)
        first, second = strings(gt[:, 0]), strings(gt[:, 1])
        ref = alleles[0]
        homref = np.array([a == ref and b == ref for a, b in zip(first, second, strict=True)], dtype=bool)
        return cls(
            first,
            second,
            [
                (int(s) if s > 0 else 0) if phased else None
                for phased, s in zip(gt[:, 2].tolist(), sets, strict=True)
            ],
            homref,
        )


def _merge_base(a: str | None, b: str | None, ref: str) -> str | None:
    if a is None or b is None:
        return None
    if a == b or b == ref:
        return a
    return b if a == ref else None  # two different variants on one copy: not readable


@dataclass
class PanelGenotypes:
    """Genotypes of every sample at the panel positions found in the file."""

    samples: list[str]
    genes: tuple[CompiledGene, ...]
    sites: dict[tuple[str, str], _Site] = field(default_factory=dict)  # (gene, position id)
    # Records inside a gene's span at positions its definition does not have: (chrom:pos, which
    # samples carry a non-reference allele there). They are not used for calling, but a sample
    # that carries one gets an uncertain call naming them (the definitions may lack an allele).
    outside: dict[str, list[tuple[str, np.ndarray]]] = field(default_factory=dict)

    def sparse_all(self, gene: CompiledGene) -> list[Sparse]:
        """Every sample's genotypes at ``gene`` in the caller's sparse form: the positions absent
        from the file, and per sample only the positions not read as homozygous reference."""
        n = len(self.samples)
        present = [(i, self.sites.get((gene.gene, pid))) for i, pid in enumerate(gene.position_ids)]
        missing = tuple(i for i, site in present if site is None)
        read = [(i, site) for i, site in present if site is not None]
        if not read:
            return [(missing, ()) for _ in range(n)]
        variant = ~np.vstack([site.homref for _, site in read])  # positions x samples
        rows: list[Sparse] = []
        for s in range(n):
            sites = tuple(
                (read[k][0], read[k][1].first[s], read[k][1].second[s], read[k][1].phase[s])
                for k in np.flatnonzero(variant[:, s]).tolist()
            )
            rows.append((missing, sites))
        return rows


def _phase_sets(rec: Variant) -> np.ndarray | None:
    """The PS values of a record (one per sample), or None when the file has no PS."""
    try:
        ps = rec.format("PS")
    except KeyError:
        return None
    return None if ps is None else np.asarray(ps, dtype=np.int64)


def _count_header_lines(path: Path) -> int:
    """Lines before the first record, as the file has them (htslib's header adds its own)."""
    with path.open("rb") as raw:
        magic = raw.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    n = 0
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            n += 1
    return n


def _regions(path: Path, vcf: VCF, definitions: tuple[GeneDefinition, ...]) -> list[str] | None:
    """One region per gene when the file has a tabix/CSI index, else None (read it all)."""
    if not any(Path(f"{path}{ext}").exists() for ext in (".tbi", ".csi")):
        return None
    names = {_chrom(n): n for n in vcf.seqnames}
    regions = []
    for d in definitions:
        contig = names.get(_chrom(d.chromosome))
        if contig is not None:
            start = min(p.pos for p in d.positions)
            end = max(p.pos + len(p.ref) - 1 for p in d.positions)
            regions.append(f"{contig}:{start}-{end}")
    return regions


def _records(path: Path, vcf: VCF, regions: list[str] | None) -> Iterator[tuple[str, Variant | Exception]]:
    """``(where, record or the parse error)`` for every line read; where is file:line, or
    file and region for an indexed read."""
    if regions is None:
        line = _count_header_lines(path)
        sources: list[tuple[str | None, Iterator[Variant]]] = [(None, iter(vcf))]
    else:
        sources = [(r, iter(vcf(r))) for r in regions]
    for region, iterator in sources:
        while True:
            if region is None:
                line += 1
                where = f"{path.name}:{line}"
            else:
                where = f"{path.name} {region}"
            try:
                rec = next(iterator)
            except StopIteration:
                break
            except Exception as exc:  # htslib parse error on this line; cyvcf2 raises Exception
                yield where, exc
                continue
            yield where, rec


def _index(
    definitions: tuple[GeneDefinition, ...],
) -> dict[tuple[str, int], list[tuple[str, Position]]]:
    index: dict[tuple[str, int], list[tuple[str, Position]]] = {}
    for d in definitions:
        for p in d.positions:
            index.setdefault((_chrom(d.chromosome), p.pos), []).append((d.gene, p))
    return index


def _indels(
    index: dict[tuple[str, int], list[tuple[str, Position]]],
) -> dict[str, list[tuple[int, str, Position]]]:
    """Definition positions that carry an indel, per chromosome (for re-anchored records)."""
    out: dict[str, list[tuple[int, str, Position]]] = {}
    for (chrom, pos), hits in index.items():
        for gene, p in hits:
            if any(len(a) != len(p.ref) for a in p.alts):
                out.setdefault(chrom, []).append((pos, gene, p))
    return out


def _spans(definitions: tuple[GeneDefinition, ...]) -> dict[str, list[tuple[str, int, int]]]:
    """Per chromosome, each gene's span from its first to its last defining position."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    for d in definitions:
        lo = min(p.pos for p in d.positions)
        hi = max(p.pos + len(p.ref) - 1 for p in d.positions)
        out.setdefault(_chrom(d.chromosome), []).append((d.gene, lo, hi))
    return out


def _note_outside(data: PanelGenotypes, spans: dict[str, list[tuple[str, int, int]]], rec: Variant) -> None:
    """Keep which samples carry a non-reference allele at a record inside a gene's span."""
    genes = [g for g, lo, hi in spans.get(_chrom(rec.CHROM), ()) if lo <= rec.POS <= hi]
    if not genes or not data.samples or not rec.ALT:
        return
    gt = rec.genotype.array()[:, :2]
    carriers = (gt > 0).any(axis=1)
    if carriers.any():
        for gene in genes:
            data.outside.setdefault(gene, []).append((f"{rec.CHROM}:{rec.POS}", carriers))


def _trim(ref: str, alt: str) -> tuple[str, str]:
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    return ref, alt


def _same_edit(p1: int, r1: str, a1: str, p2: int, r2: str, a2: str) -> bool:
    """Do two REF/ALT edits at two anchors give the same sequence? Only the bases the two REFs
    cover are known, so they must overlap or touch and agree where they overlap."""
    start, end = min(p1, p2), max(p1 + len(r1), p2 + len(r2))
    seq: list[str | None] = [None] * (end - start)
    for p, r in ((p1, r1), (p2, r2)):
        for k, base in enumerate(r):
            j = p - start + k
            if seq[j] not in (None, base):
                return False
            seq[j] = base
    if any(b is None for b in seq):
        return False
    text = "".join(b for b in seq if b is not None)
    one = text[: p1 - start] + a1 + text[p1 - start + len(r1) :]
    two = text[: p2 - start] + a2 + text[p2 - start + len(r2) :]
    return one == two


def _spell(vcf_pos: int, vcf_ref: str, allele: str, p: Position) -> str:
    """A VCF allele in the definition's spelling: its REF, one of its ALTs, or ``?allele``."""
    if allele == vcf_ref:
        return p.ref
    for alt in p.alts:
        if vcf_pos == p.pos and _trim(vcf_ref, allele) == _trim(p.ref, alt):
            return alt
        if vcf_pos != p.pos and _same_edit(vcf_pos, vcf_ref, allele, p.pos, p.ref, alt):
            return alt
    return f"?{allele}"


def _ref_agrees(vcf_ref: str, def_ref: str) -> bool:
    """Same position, same reference: one REF may run further than the other (C vs CAT)."""
    n = min(len(vcf_ref), len(def_ref))
    return vcf_ref[:n] == def_ref[:n]


def _reanchored(
    indels: dict[str, list[tuple[int, str, Position]]], chrom: str, rec: Variant
) -> list[tuple[str, Position]]:
    """Definition indel positions that an indel record written at another anchor spells."""
    alts = [a for a in rec.ALT if a and a not in (".", "*")]
    if not alts or all(len(a) == len(rec.REF) for a in alts):
        return []
    out = []
    for pos, gene, p in indels.get(chrom, ()):
        if abs(pos - rec.POS) > 100:
            continue
        ref = rec.REF.upper()
        if any(_same_edit(rec.POS, ref, a.upper(), p.pos, p.ref, alt) for a in alts for alt in p.alts):
            out.append((gene, p))
    return out


def read_panel_genotypes(
    path: Path, report: ImportReport, *, genes: tuple[str, ...] | None = None
) -> PanelGenotypes:
    """Read ``path`` and keep the genotypes at the panel positions; count every line."""
    definitions = load_panel(genes)
    try:
        from cyvcf2 import VCF  # the 'omics' extra
    except ImportError as exc:
        raise MissingExtraError("cyvcf2", extra="omics", purpose="reading a VCF") from exc
    try:
        vcf = VCF(str(path), gts012=False, strict_gt=False)
    except (OSError, Exception) as exc:  # cyvcf2 raises bare Exception for unreadable files
        raise ConversionError(f"cannot open as VCF: {exc}", source=str(path)) from exc
    header = vcf.raw_header
    build, evidence = detect_build(header)
    if build == "other":
        raise ConversionError(
            f"genome build is not GRCh38 ({evidence}); the allele definitions are on GRCh38 — "
            "lift the file over first",
            source=str(path),
        )
    if build is None:
        report.warnings.append(f"genome build not declared: {evidence}; REF bases decide")
    index = _index(definitions)
    indels = _indels(index)
    spans = _spans(definitions)
    compiled = tuple(compile_gene(d) for d in definitions)
    data = PanelGenotypes(list(vcf.samples), compiled)
    lines = report.tally("vcf data lines")
    ref_mismatch = ref_checked = 0
    merged = 0
    regions = _regions(path, vcf, definitions)
    if regions is not None:
        report.warnings.append(
            "indexed file: only the panel's regions were read "
            f"({', '.join(regions)}); other lines were not looked at"
        )
    for where, rec in _records(path, vcf, regions):
        if isinstance(rec, Exception):
            lines.reject("malformed VCF line", f"{where}: {rec}")
            continue
        hits = index.get((_chrom(rec.CHROM), rec.POS))
        if not hits:
            hits = _reanchored(indels, _chrom(rec.CHROM), rec)
            if not hits:
                lines.skip("not a panel position", None)
                _note_outside(data, spans, rec)
                continue
        else:
            ref_checked += 1
            if not _ref_agrees(rec.REF.upper(), hits[0][1].ref):
                ref_mismatch += 1
                lines.reject(
                    "REF differs from GRCh38",
                    f"{where}: {rec.CHROM}:{rec.POS} REF {rec.REF}, "
                    f"GRCh38 {hits[0][1].ref} ({hits[0][1].id})",
                )
                continue
        gt = rec.genotype.array() if data.samples else np.zeros((0, 3), dtype=np.int16)
        ps = _phase_sets(rec) if data.samples else None
        vcf_ref = rec.REF.upper()
        for g, p in hits:
            alleles = [_spell(rec.POS, vcf_ref, a.upper(), p) for a in [rec.REF, *rec.ALT]]
            site = _Site.from_array(alleles, gt, ps)
            if (g, p.id) in data.sites:
                # Several records for one position (a split multi-allelic site, or an indel and
                # a SNV written at two anchors): merged copy by copy, a conflict is a no-call.
                site = data.sites[(g, p.id)].merge(site, p.ref)
                merged += 1
            data.sites[(g, p.id)] = site
        lines.ok()
    vcf.close()
    if merged:
        report.counts["records merged into a position another record also gave"] += merged
    vcf.close()

    if ref_checked >= 3 and ref_mismatch * 2 > ref_checked:
        raise ConversionError(
            f"REF bases disagree with GRCh38 at {ref_mismatch} of {ref_checked} panel positions; "
            "the file looks like another genome build",
            source=str(path),
        )
    return data


@dataclass
class VcfCalls:
    """Calls for every sample of a VCF: ``calls[sample] -> one GeneCall per panel gene``."""

    samples: list[str]
    calls: dict[str, tuple[GeneCall, ...]]
    report: ImportReport


def call_samples(data: PanelGenotypes) -> dict[str, tuple[GeneCall, ...]]:
    """Call every gene for every sample of ``data``."""
    per_gene = []
    for gene in data.genes:
        calls = [call_sparse(gene, row) for row in data.sparse_all(gene)]
        for where, carriers in data.outside.get(gene.gene, ()):
            for s in np.flatnonzero(carriers).tolist():
                calls[s] = _flag_outside(calls[s], where)
        per_gene.append(calls)
    return {sample: tuple(calls[s] for calls in per_gene) for s, sample in enumerate(data.samples)}


def _flag_outside(call: GeneCall, where: str) -> GeneCall:
    """A non-reference allele the definitions do not cover: the call may miss an allele."""
    note = f"non-reference allele at {where}, a position the allele definitions do not have"
    status = "uncertain" if call.status == "called" else call.status
    return replace(
        call,
        uncertain=True,
        status=status,
        unmatched_positions=(*call.unmatched_positions, where),
        note=f"{call.note}; {note}" if call.note else note,
    )


def call_vcf(path: Path, *, genes: tuple[str, ...] | None = None) -> VcfCalls:
    """Read ``path`` and call the panel (or ``genes``) for every sample."""
    report = ImportReport(source=str(path))
    data = read_panel_genotypes(path, report, genes=genes)
    present = {g for g, _ in data.sites}
    for gene in data.genes:
        if gene.gene not in present:
            report.warnings.append(f"{gene.gene}: none of its positions is in the file")
    total = sum(len(g.position_ids) for g in data.genes)
    if len(data.sites) * 2 < total:
        report.warnings.append(
            f"only {len(data.sites)} of {total} panel positions are in the file: calls are "
            "uncertain; check that it is GRCh38 and covers the panel (gVCF blocks are not read)"
        )
    log.info("%s: %d samples, %d of %d panel positions", path, len(data.samples), len(data.sites), total)
    return VcfCalls(data.samples, call_samples(data), report)
