"""The shipped allele-definition tables: versioned, consistent, and on GRCh38."""

from __future__ import annotations

from cyvcf2 import VCF

from converters.omics.definitions import PANEL, hgnc_id, known_genes, load_panel
from tests.data import PGX_EXAMPLE_VCF


def test_every_panel_gene_has_a_versioned_table_with_its_source() -> None:
    defs = load_panel()
    assert [d.gene for d in defs] == list(PANEL)
    for d in defs:
        assert d.version and "PharmVar" in d.source and d.genome_build == "GRCh38"
        assert d.allele(d.reference).defining == {}
        assert hgnc_id(d.gene) is not None


def test_positions_and_ref_bases_match_pharmcats_grch38_vcf() -> None:
    """Every position of our tables is in PharmCAT's example VCF with the same REF and rsid."""
    sites = {}
    for rec in VCF(str(PGX_EXAMPLE_VCF)):
        sites[(rec.CHROM, rec.POS)] = (rec.ID, rec.REF, set(rec.ALT))
    for d in load_panel():
        for p in d.positions:
            rsid, ref, alts = sites[(d.chromosome, p.pos)]
            assert rsid == p.id, (d.gene, p)
            assert ref == p.ref, (d.gene, p)
            assert set(p.alts) <= alts, (d.gene, p, alts)


def test_every_function_pair_has_a_phenotype_or_the_guideline_default() -> None:
    for d in load_panel():
        names = [a.name for a in d.alleles]
        for a in names:
            for b in names:
                phenotype, _ = d.phenotype_of(a, b)
                assert phenotype


def test_known_genes_cover_the_panel_and_pharmcat_genes() -> None:
    assert set(PANEL) | {"CYP2D6", "HLA-B", "G6PD", "MT-RNR1"} <= known_genes()
