"""The shipped worked example end to end through the CLI: a FHIR bundle and a VCF imported with
the same pseudonymisation key merge into one record per child; the CYP3A5 call reaches the
tacrolimus twin (Hao 2018) and the dose recommended for the expresser is higher than for the
non-expresser with the same clinical data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data import MODELS, ROOT

EXAMPLE = ROOT / "interop" / "data" / "examples" / "tacrolimus"
KEY = "example-key-0123456789abcdef"
AMOUNTS = ",".join(f"{x / 4:g}" for x in range(1, 25))  # 0.25 to 6 mg


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTEROP_HOME": str(home), "PYTHONPATH": str(ROOT), "INTEROP_PSEUDONYM_KEY": KEY}
    env.pop("INTEROP_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "interop", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=600,
    )


@pytest.mark.slow
def test_genotype_informed_recommendation_end_to_end(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "import"
    home.mkdir()
    fhir = run_cli("import", "fhir", str(EXAMPLE / "bundle.json"), "--out", str(out), home=home)
    assert fhir.returncode == 0, fhir.stderr
    vcf = run_cli(
        "import", "vcf", str(EXAMPLE / "cyp3a5.vcf"), "--out", str(out),
        "--samples", str(EXAMPLE / "samples.csv"), "--genes", "CYP3A5", home=home,
    )  # fmt: skip
    assert vcf.returncode == 0, vcf.stderr
    records = sorted((out / "records").glob("*.json"))
    assert len(records) == 2  # the VCF samples merged into the FHIR patients: same key, same pseudonyms
    by_status = {}
    for path in records:
        text = path.read_text()
        assert "MRN-TAC" not in text and "S-EXP" not in text
        rec = json.loads(text)
        assert len(rec["doses"]) == 6 and rec["genotypes"][0]["gene"] == "CYP3A5"
        by_status[rec["genotypes"][0]["phenotype"]] = path

    results = {}
    for phenotype, path in by_status.items():
        res = run_cli(
            "twin", "recommend", "--model", str(MODELS / "tacrolimus_hao2018.xml"), "--patient", str(path),
            "--target", "trough", "--low", "5", "--high", "10", "--amounts", AMOUNTS, "--intervals", "12",
            "--draws", "200", "--out", str(tmp_path / phenotype.replace(" ", "_")), home=home,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "CYP3A5_EXPR" in res.stdout and "genotype" in res.stdout  # the CLI shows the binding
        results[phenotype] = json.loads(
            (tmp_path / phenotype.replace(" ", "_") / "recommendation.json").read_text()
        )

    exp, non = results["Intermediate Metabolizer"], results["Poor Metabolizer"]
    for payload, expected in ((exp, 1.0), (non, 0.0)):
        cov = {c["name"]: c for c in payload["covariates"]}
        assert cov["CYP3A5_EXPR"]["value_at_origin"] == expected
        assert len(cov["CYP3A5_EXPR"]["records"]) == 1
        assert any("converters.omics" in p for p in cov["CYP3A5_EXPR"]["provenance"])
        assert cov["WT"]["value_at_origin"] == 30 and cov["WT"]["timing"] == "locf"
        assert payload["fell_back_to_reference"] == [] and payload["warnings"] == []
        assert payload["parameter_units"]["TVCL"] == "L/h"
    # Same doses and level: the a priori (population) trough of the expresser is lower by the
    # clearance factor's effect, the fitted clearance higher, and so is the recommended dose.
    assert exp["fit"]["observations"][0]["pred"] < non["fit"]["observations"][0]["pred"]
    assert exp["fit"]["individual_parameters"]["CL"] > non["fit"]["individual_parameters"]["CL"]
    assert exp["recommendation"]["best"]["amount"] > non["recommendation"]["best"]["amount"]

    # An untested patient is not treated as a non-expresser: the card says missing = error.
    untested = json.loads(by_status["Poor Metabolizer"].read_text())
    untested["genotypes"] = []
    path = tmp_path / "untested.json"
    path.write_text(json.dumps(untested))
    res = run_cli(
        "twin", "fit", "--model", str(MODELS / "tacrolimus_hao2018.xml"), "--patient", str(path), home=home
    )
    assert res.returncode != 0 and "CYP3A5_EXPR" in res.stderr and "untested" in res.stderr
