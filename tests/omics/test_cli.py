"""``interop import vcf | pharmcat | fhir-genomics | expression`` and ``interop omics export-fhir``
through the real CLI: in-process (typer's CliRunner), and ``omics export-fhir`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from converters.omics import pseudonymise
from interop.schema import PatientRecord
from tests.clirun import CliRun, invoke, run_subprocess
from tests.data import (
    FHIR_TPMT_DIPLOTYPE,
    PGX_EXAMPLE_VCF,
    PGX_PHENOTYPE_JSON,
    PGX_REPORT_TSV,
)
from tests.omics.vcfgen import write_vcf

K1 = "k1-omics-cli-key-0123456789"  # every importer takes its key the same way (>= 16 bytes)
K2 = "k2-omics-cli-key-0123456789"


def run(*args: str, env: dict[str, str] | None = None) -> CliRun:
    """``interop ARGS`` in-process; ``INTEROP_PSEUDONYM_KEY`` unset unless ``env`` sets it."""
    return invoke(args, env={"INTEROP_PSEUDONYM_KEY": None, **(env or {})})


@pytest.mark.slow
def test_vcf_then_pharmcat_merge_into_one_pseudonymised_record(tmp_path: Path) -> None:
    mapping = tmp_path / "samples.tsv"
    mapping.write_text("sample_id\tpatient_id\nSample_1\tMRN-0042\n")
    out = tmp_path / "cohort"
    env = {"INTEROP_PSEUDONYM_KEY": K1}
    r = run("import", "vcf", str(PGX_EXAMPLE_VCF), "--out", str(out), "--samples", str(mapping), env=env)
    assert r.returncode == 0, r.stderr
    assert "not a panel position" in r.stdout
    r = run(
        "import",
        "pharmcat",
        str(PGX_PHENOTYPE_JSON),
        str(PGX_REPORT_TSV),
        "--sample",
        "Sample_1",
        "--out",
        str(out),
        "--samples",
        str(mapping),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    pid = pseudonymise(K1, "MRN-0042")
    record = PatientRecord.model_validate_json((out / "records" / f"{pid}.json").read_text())
    sources = {g.id.split("-")[0] for g in record.genotypes}
    assert sources == {"vcf", "pharmcat"}
    assert len([g for g in record.genotypes if g.gene == "CYP2C19"]) == 2
    reports = sorted(p.name for p in (out / "reports").iterdir())
    assert not any("pharmcat.example" in name for name in reports)  # input names never appear
    (vcf_report,) = (out / "reports").glob("import-vcf-src-*.json")
    rep = json.loads(vcf_report.read_text())
    lines = next(t for t in rep["counts"] if t["resource_type"] == "vcf data lines")
    assert lines["read"] == lines["converted"] + lines["skipped"] + lines["rejected"]

    bundle_path = tmp_path / "bundle.json"
    r = run_subprocess(  # the omics group's end-to-end check: a fresh interpreter
        ["omics", "export-fhir", str(out / "records" / f"{pid}.json"), "-o", str(bundle_path)],
        env={"INTEROP_PSEUDONYM_KEY": None},
    )
    assert r.returncode == 0, r.stderr
    Bundle.model_validate_json(bundle_path.read_text())


def test_other_build_exits_1_with_one_line(tmp_path: Path) -> None:
    vcf = write_vcf(
        tmp_path / "b37.vcf",
        {"S1": {}},
        header=[
            "##fileformat=VCFv4.2",
            "##reference=GRCh37",
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="GT">',
        ],
    )
    r = run("import", "vcf", str(vcf), "--out", str(tmp_path / "o"), env={"INTEROP_PSEUDONYM_KEY": K1})
    assert r.returncode == 1
    assert "not GRCh38" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o" / "records").exists()


def test_unknown_gene_option_exits_1(tmp_path: Path) -> None:
    r = run(
        "import",
        "vcf",
        str(PGX_EXAMPLE_VCF),
        "--out",
        str(tmp_path),
        "--genes",
        "CYP2C19,XYZ1",
        env={"INTEROP_PSEUDONYM_KEY": K1},
    )
    assert r.returncode == 1 and "unrecognised gene symbol" in r.stderr


def test_vcf_without_a_key_refuses_to_use_sample_ids(tmp_path: Path) -> None:
    r = run("import", "vcf", str(PGX_EXAMPLE_VCF), "--out", str(tmp_path))
    assert r.returncode == 1 and "pseudonymisation key" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "records").exists()


def test_fhir_genomics_and_expression_commands(tmp_path: Path) -> None:
    key = {"INTEROP_PSEUDONYM_KEY": K2}
    r = run("import", "fhir-genomics", str(FHIR_TPMT_DIPLOTYPE), "--out", str(tmp_path), env=key)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "records" / f"{pseudonymise(K2, 'example')}.json").exists()
    matrix = tmp_path / "m.tsv"
    matrix.write_text("gene\tS1\tS9\nTPMT\t4\t2\nDPYD\t1\t0\n")
    mapping = tmp_path / "map.csv"
    mapping.write_text("sample_id,patient_id\nS1,example\n")
    r = run(
        "import",
        "expression",
        str(matrix),
        "--out",
        str(tmp_path),
        "--samples",
        str(mapping),
        env=key,
    )
    assert r.returncode == 0, r.stderr
    assert "sample id not in the mapping file" in r.stdout
    written = "".join(p.read_text() for p in (tmp_path / "reports").iterdir())
    assert "S9" not in written and "m.tsv" not in written  # sample and file named by keyed tokens
    record = PatientRecord.model_validate_json(
        (tmp_path / "records" / f"{pseudonymise(K2, 'example')}.json").read_text()
    )
    assert len(record.genotypes) == 1 and len(record.omics) == 1  # merged into the same patient
