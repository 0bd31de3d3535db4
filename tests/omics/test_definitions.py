"""The shipped allele-definition tables: versioned, consistent, and on GRCh38."""

from __future__ import annotations

from cyvcf2 import VCF

from converters.omics.definitions import PANEL, hgnc_id, known_genes, load_panel, source_manifest
from tests.data import PGX_EXAMPLE_VCF


def test_every_panel_gene_has_a_versioned_table_with_its_source() -> None:
    defs = load_panel()
    assert [d.gene for d in defs] == list(PANEL)
    for d in defs:
        assert d.version and "PharmVar" in d.source and d.genome_build == "GRCh38"
        assert d.allele(d.reference).defining == {}
        assert hgnc_id(d.gene) is not None


def test_positions_and_ref_bases_match_pharmcats_grch38_vcf() -> None:
    """Our positions are on GRCh38 as PharmCAT's example VCF has them: where both have a position
    the REF bases agree (one may run longer) and share a variant; nearly all of ours are there
    (the rest are indels PharmCAT anchors elsewhere or alleles it has since dropped)."""
    sites = {}
    for rec in VCF(str(PGX_EXAMPLE_VCF)):
        sites[(rec.CHROM, rec.POS)] = (rec.REF, set(rec.ALT))
    total = found = 0
    for d in load_panel():
        for p in d.positions:
            total += 1
            if (d.chromosome, p.pos) not in sites:
                continue
            found += 1
            ref, alts = sites[(d.chromosome, p.pos)]
            n = min(len(ref), len(p.ref))
            assert ref[:n] == p.ref[:n], (d.gene, p, ref)
            ours = {_trim(p.ref, a) for a in p.alts}
            assert ours & {_trim(ref, a) for a in alts} or len(p.alts) == 1, (d.gene, p, alts)
    assert found / total > 0.9, (found, total)


def _trim(ref: str, alt: str) -> tuple[str, str]:
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    return ref, alt


def test_tables_name_their_source_version_checksum_and_licence() -> None:
    manifest = source_manifest()
    assert manifest["source"] == "pypgx" and manifest["version"]
    assert len(str(manifest["sha256"])) == 64 and "MIT" in str(manifest["licence"])
    for d in load_panel():
        assert d.version == f"pypgx-{manifest['version']}" and "MIT" in d.licence


def test_every_function_pair_has_a_phenotype_or_the_guideline_default() -> None:
    for d in load_panel():
        names = [a.name for a in d.alleles]
        for a in names:
            for b in names:
                phenotype, _ = d.phenotype_of(a, b)
                assert phenotype or d.phenotype.method == "none", (d.gene, a, b)


def test_known_genes_cover_the_panel_and_pharmcat_genes() -> None:
    assert set(PANEL) | {"CYP2D6", "HLA-B", "G6PD", "MT-RNR1"} <= known_genes()
