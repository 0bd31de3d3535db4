"""FHIR genomics Observations in (R4 core and Genomics Reporting) and genotypes out."""

from __future__ import annotations

import json
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from converters.omics import (
    PatientIds,
    export_genotypes_bundle,
    import_fhir_genomics,
    import_vcf,
    load_record,
    pseudonymise,
)
from converters.omics.definitions import PANEL
from tests.data import FHIR_CYP2C9_DIPLOTYPE, FHIR_R4_SPEC, FHIR_TPMT_DIPLOTYPE
from tests.omics.vcfgen import write_vcf

KEY = "test-key"


def test_r4_core_tpmt_diplotype_example(tmp_path: Path) -> None:
    report = import_fhir_genomics(FHIR_TPMT_DIPLOTYPE, tmp_path, PatientIds(key=KEY))
    assert report.tallies["resources"].converted == 1
    record = load_record(tmp_path, pseudonymise(KEY, "example"))
    assert record is not None
    (g,) = record.genotypes
    assert (g.gene, g.diplotype, g.id) == ("TPMT", "*1/*4", "fhir-TPMT")
    assert g.provenance.resource_id == PatientIds(key=KEY).source_ref("example-TPMT-diplotype")  # keyed hash
    assert [t.kind for t in g.provenance.transformations] == ["pseudonymisation"]


def test_r4_core_diplotype_without_value_is_rejected_not_dropped(tmp_path: Path) -> None:
    report = import_fhir_genomics(FHIR_CYP2C9_DIPLOTYPE, tmp_path, PatientIds(key=KEY))
    tally = report.tallies["resources"]
    assert tally.rejected == {"genotype Observation without a value": 1}
    assert tally.balanced
    assert not (tmp_path / "records").exists()


def test_whole_r4_spec_folder_counts_add_up(tmp_path: Path) -> None:
    report = import_fhir_genomics(FHIR_R4_SPEC, tmp_path, PatientIds(key=KEY))
    tally = report.tallies["resources"]
    assert tally.balanced
    assert tally.converted == 1
    assert tally.read == 16
    assert tally.skipped["not a genomics Observation"] == 2  # body weight, body height
    assert tally.skipped["not an Observation (MedicationAdministration)"] == 7


def test_export_validates_and_round_trips(tmp_path: Path) -> None:
    vcf = write_vcf(
        tmp_path / "s.vcf",
        {"patient-0001": {"CYP2C19": ("*2", "*17"), "DPYD": ("Reference", "c.2846A>T")}},
        drop=frozenset({"rs776746"}),
    )
    import_vcf(vcf, tmp_path / "a", PatientIds())
    record = load_record(tmp_path / "a", "patient-0001")
    assert record is not None
    bundle = export_genotypes_bundle(record)
    Bundle.model_validate(bundle)  # fhir.resources R4B accepts it
    observations = [Observation.model_validate(e["resource"]) for e in bundle["entry"]]
    genotype_obs = [o for o in observations if o.code.coding[0].code == "84413-4"]
    assert len(genotype_obs) == len(PANEL)
    c19 = next(o for o in genotype_obs if o.id == "vcf-CYP2C19-genotype")
    assert c19.valueCodeableConcept.text == "CYP2C19 *2/*17"
    assert c19.component[0].valueCodeableConcept.coding[0].code == "HGNC:2621"
    cyp3a5 = next(o for o in genotype_obs if o.id == "vcf-CYP3A5-genotype")
    assert "rs776746" in (cyp3a5.note[0].text or "")
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    report = import_fhir_genomics(path, tmp_path / "b", PatientIds())
    assert report.tallies["resources"].balanced and not report.tallies["resources"].rejected
    back = load_record(tmp_path / "b", "patient-0001")
    assert back is not None
    before = {g.gene: (g.diplotype, g.phenotype) for g in record.genotypes}
    after = {g.gene: (g.diplotype, g.phenotype) for g in back.genotypes}
    assert after == before
    assert after["CYP2C19"] == ("*2/*17", "Intermediate Metabolizer")


def test_genomics_reporting_haplotypes_and_gene_specific_phenotype(tmp_path: Path) -> None:
    def obs(id_: str, code: str, value: str, gene: str | None) -> dict:
        o: dict = {
            "resourceType": "Observation",
            "id": id_,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/pat-000001"},
            "valueCodeableConcept": {"text": value},
        }
        if gene:
            o["component"] = [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://www.genenames.org/geneId", "code": gene}]
                    },
                }
            ]
        return o

    ndjson = tmp_path / "obs.ndjson"
    rows = [
        obs("h1", "84414-2", "*1", "HGNC:2623"),
        obs("h2", "84414-2", "*3", "HGNC:2623"),
        obs("p1", "79716-7", "Intermediate Metabolizer", None),  # CYP2C9 by its code
        obs("g1", "84413-4", "FOO9 *1/*2", "FOO9"),
        obs("g2", "84413-4", "CYP2C19 *1/*2", "HGNC:2621"),
        obs("g3", "84413-4", "CYP2C19 *2/*2", "HGNC:2621"),
    ]
    ndjson.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = import_fhir_genomics(ndjson, tmp_path, PatientIds())
    tally = report.tallies["resources"]
    assert tally.balanced and tally.read == 6 and tally.converted == 4
    assert tally.rejected == {
        "unrecognised gene symbol": 1,
        "conflicts with another genotype Observation": 1,
    }
    assert tally.examples["unrecognised gene symbol"][0].startswith("obs.ndjson:4")
    record = load_record(tmp_path, "pat-000001")
    assert record is not None
    genes = {g.gene: g for g in record.genotypes}
    assert (genes["CYP2C9"].diplotype, genes["CYP2C9"].phenotype) == (
        "*1/*3",
        "Intermediate Metabolizer",
    )
    assert any(
        t.kind == "derivation" and "haplotype" in t.detail for t in genes["CYP2C9"].provenance.transformations
    )
    assert genes["CYP2C19"].diplotype == "*1/*2"


def test_pharmcat_genotypes_export_as_valid_observations(tmp_path: Path) -> None:
    from converters.omics import import_pharmcat
    from tests.data import PGX_PHENOTYPE_JSON

    import_pharmcat(PGX_PHENOTYPE_JSON, tmp_path, PatientIds())
    record = load_record(tmp_path, "Sample_1")
    assert record is not None
    bundle = Bundle.model_validate(export_genotypes_bundle(record))
    codes = [e.resource.code.coding[0].code for e in bundle.entry]
    with_diplotype = [g for g in record.genotypes if g.diplotype]
    with_phenotype = [g for g in record.genotypes if g.phenotype]
    assert codes.count("84413-4") == len(with_diplotype)
    assert codes.count("therapeutic-implication") == len(with_phenotype)
    hla = next(e.resource for e in bundle.entry if e.resource.id == "pharmcat-HLA-B-genotype")
    assert hla.valueCodeableConcept.coding is None  # not a PharmVar gene: text only
