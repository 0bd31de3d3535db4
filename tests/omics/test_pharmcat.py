"""PharmCAT's outputs imported as they are, beside the hub's own VCF calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converters.omics import PatientIds, import_pharmcat, import_vcf, load_record
from converters.omics.definitions import load_definition
from converters.omics.ids import pseudonymise
from converters.omics.pharmcat import read_pharmcat
from interop.errors import ConversionError
from tests.data import (
    PGX_EXAMPLE2_REPORT_JSON,
    PGX_EXAMPLE2_VCF,
    PGX_EXAMPLE_VCF,
    PGX_OUTSIDE_CALL,
    PGX_PHENOTYPE_JSON,
    PGX_REPORT_TSV,
)


def test_phenotype_json_names_its_sample_and_every_gene() -> None:
    sample, calls = read_pharmcat(PGX_PHENOTYPE_JSON)
    assert sample == "Sample_1"
    by_gene = {c.gene: c for c in calls}
    doc = json.loads(PGX_PHENOTYPE_JSON.read_text())
    assert set(by_gene) == set(doc["geneReports"])
    assert by_gene["CYP2C19"].diplotype == "*38/*38"
    assert by_gene["CYP2C9"].activity_score == 2.0
    assert by_gene["CYP2D6"].outside and by_gene["CYP2D6"].diplotype == "*1/*3"
    assert by_gene["HLA-B"].phenotype == "*15:02 positive; *57:01 positive; *58:01 negative"


def test_report_tsv_rows_keep_their_lines() -> None:
    sample, calls = read_pharmcat(PGX_REPORT_TSV)
    assert sample is None
    by_gene = {c.gene: c for c in calls}
    assert len(calls) == 20
    assert by_gene["CYP2D6"].phenotype == "Intermediate Metabolizer"
    assert by_gene["CYP2D6"].activity_score == 1.0
    assert by_gene["RYR1"].line == 3
    assert "v3.1.0" in by_gene["TPMT"].caller


def test_vcf_and_pharmcat_calls_are_kept_side_by_side(tmp_path: Path) -> None:
    ids = PatientIds()
    import_vcf(PGX_EXAMPLE_VCF, tmp_path, ids)
    report = import_pharmcat(PGX_PHENOTYPE_JSON, tmp_path, ids)
    tally = report.tallies["gene calls"]
    assert tally.balanced and tally.read == 23
    # MT-RNR1's call is a single mitochondrial allele, which the schema cannot hold as a diplotype
    assert tally.rejected == {"not a diplotype (single allele or variant call)": 1}
    record = load_record(tmp_path, "Sample_1")
    assert record is not None
    ours = {g.gene: g for g in record.genotypes if g.id.startswith("vcf-")}
    theirs = {g.gene: g for g in record.genotypes if g.id.startswith("pharmcat-")}
    assert set(ours) <= set(theirs)
    for gene, g in ours.items():
        reference = load_definition(gene).reference  # older PharmCAT reports call CFTR's "Reference"
        their_dip = [reference if h == "Reference" else h for h in theirs[gene].diplotype.split("/")]  # type: ignore[union-attr]
        assert sorted(g.diplotype.split("/")) == sorted(their_dip)  # type: ignore[union-attr]
        if (
            theirs[gene].phenotype not in (None, "", "n/a")
            and load_definition(gene).phenotype.method != "none"
        ):
            assert g.phenotype == theirs[gene].phenotype
        # uncertain only where our tables have a position PharmCAT's file does not (dropped since)
        assert g.status == "called" or (g.status == "uncertain" and g.missing_positions), g
        assert g.provenance.source_system == "vcf:pharmcat.example.vcf"
        assert theirs[gene].provenance.source_system == "pharmcat:pharmcat.example.phenotype.json"
        assert theirs[gene].caller.startswith("PharmCAT")
    # re-importing changes nothing: items are replaced by id
    before = (tmp_path / "records" / "Sample_1.json").read_text()
    import_pharmcat(PGX_PHENOTYPE_JSON, tmp_path, ids)
    import_vcf(PGX_EXAMPLE_VCF, tmp_path, ids)
    assert (tmp_path / "records" / "Sample_1.json").read_text() == before


def test_outside_call_file_needs_a_sample_and_keeps_its_own_ids(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="--sample"):
        import_pharmcat(PGX_OUTSIDE_CALL, tmp_path, PatientIds())
    report = import_pharmcat(PGX_OUTSIDE_CALL, tmp_path, PatientIds(), sample="Sample_1")
    assert report.tallies["gene calls"].converted == 2
    record = load_record(tmp_path, "Sample_1")
    assert record is not None
    assert {g.id for g in record.genotypes} == {"outside-call-CYP2D6", "outside-call-HLA-B"}


def test_unrecognised_gene_and_unmapped_sample_are_reported(tmp_path: Path) -> None:
    tsv = tmp_path / "outside.tsv"
    tsv.write_text("CYP2D6\t*1/*4\nFOO1\t*1/*2\n")
    report = import_pharmcat(tsv, tmp_path, PatientIds(), sample="Sample_1")
    assert report.tallies["gene calls"].rejected == {"unrecognised gene symbol": 1}
    assert report.tallies["gene calls"].examples["unrecognised gene symbol"] == ["outside.tsv:2 FOO1"]
    report = import_pharmcat(tsv, tmp_path, PatientIds(mapping={"other": "patient-0001"}), sample="Sample_1")
    assert report.tallies["gene calls"].skipped == {"sample id not in the mapping file": 2}


def test_pseudonymised_patient_ids(tmp_path: Path) -> None:
    ids = PatientIds(key="site-secret", mapping={"Sample_1": "MRN-12345"})
    import_pharmcat(PGX_PHENOTYPE_JSON, tmp_path, ids)
    (path,) = (tmp_path / "records").glob("*.json")
    assert path.stem == pseudonymise("site-secret", "MRN-12345")
    assert "MRN" not in path.read_text() and "Sample_1" not in path.read_text()


def test_system_value_ids_match_the_fhir_converters_pseudonym(tmp_path: Path) -> None:
    """A mapping to SYSTEM|VALUE merges with the record the FHIR converter made for that Patient."""
    from converters import convert_bundle_file
    from tests.data import DEMO

    key = "site-secret-0123456789"
    fhir_id = convert_bundle_file(DEMO / "gentamicin_patient.json", key.encode()).records[0].patient.id
    ids = PatientIds(key=key, mapping={"Sample_1": "urn:oid:2.999.1.1.1|MRN-0042-DEMO"})
    import_pharmcat(PGX_PHENOTYPE_JSON, tmp_path, ids)
    (path,) = (tmp_path / "records").glob("*.json")
    assert path.stem == fhir_id


def test_report_json_and_our_vcf_call_agree_on_example2(tmp_path: Path) -> None:
    sample, calls = read_pharmcat(PGX_EXAMPLE2_REPORT_JSON)
    assert sample == "Sample_2"
    by_gene = {c.gene: c for c in calls}
    assert by_gene["CYP2C19"].diplotype == "*2/*2"
    assert by_gene["CYP2C19"].phenotype == "Poor Metabolizer"
    assert by_gene["CYP2C19"].caller.startswith("PharmCAT v3.1.0")
    assert by_gene["DPYD"].activity_score == 2.0
    ids = PatientIds(mapping={"Sample_2": "patient-0002"})
    import_vcf(PGX_EXAMPLE2_VCF, tmp_path, ids)
    import_pharmcat(PGX_EXAMPLE2_REPORT_JSON, tmp_path, ids)
    record = load_record(tmp_path, "patient-0002")
    assert record is not None
    c19 = {g.id: g for g in record.genotypes if g.gene == "CYP2C19"}
    assert set(c19) == {"vcf-CYP2C19", "pharmcat-CYP2C19"}
    assert {g.diplotype for g in c19.values()} == {"*2/*2"}


def test_positions_pharmcat_could_not_read_make_its_call_uncertain(tmp_path: Path) -> None:
    doc = json.loads(PGX_PHENOTYPE_JSON.read_text())
    for v in doc["geneReports"]["CYP2C19"]["variants"]:
        if v["dbSnpId"] == "rs4244285":
            v["call"] = None
    path = tmp_path / "gaps.phenotype.json"
    path.write_text(json.dumps(doc))
    import_pharmcat(path, tmp_path, PatientIds())
    record = load_record(tmp_path, "Sample_1")
    assert record is not None
    g = next(g for g in record.genotypes if g.id == "pharmcat-CYP2C19")
    assert g.uncertain and g.missing_positions == ("rs4244285",)
