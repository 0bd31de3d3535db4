"""Virtual cohorts draw genotypes by population, conditions by prevalence and derived covariates
jointly, and write them into records that bind back to the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interop.cohort import Design, draw_subject, simulate_cohort
from interop.cohort.population import parse_distributions
from interop.errors import SchemaError
from interop.schema import ModelCard, parse_json
from interop.schema.cohort import read_cohort
from interop.twin.covariates import baseline_values
from tests.data import MODELS

CARD = parse_json(ModelCard, (MODELS / "tacrolimus_hao2018.card.json").read_text())
SBML = (MODELS / "tacrolimus_hao2018.xml").read_text()
POPULATIONS = {
    "WT": {"dist": "lognormal", "median": 30, "cv": 0.3, "min": 13, "max": 80},
    "populations": {
        "all-expressers": {
            "weight": 0.3,
            "covariates": {
                "CYP3A5_EXPR": {"dist": "genotype", "frequencies": {"Intermediate Metabolizer": 1.0}}
            },
        },
        "mixed": {
            "weight": 0.7,
            "covariates": {
                "CYP3A5_EXPR": {
                    "dist": "genotype",
                    "frequencies": {
                        "Poor Metabolizer": 0.5,
                        "Intermediate Metabolizer": 0.4,
                        "Normal Metabolizer": 0.1,
                    },
                }
            },
        },
    },
}


def test_genotypes_are_drawn_by_population() -> None:
    pop = parse_distributions(POPULATIONS, CARD, "test")
    subjects = [draw_subject(CARD, pop, 5, i) for i in range(2000)]
    by_group = {g: [s for s in subjects if s.population == g] for g in ("all-expressers", "mixed")}
    assert all(s.covariates["CYP3A5_EXPR"] == 1 for s in by_group["all-expressers"])
    share = len(by_group["all-expressers"]) / len(subjects)
    assert share == pytest.approx(0.3, abs=0.03)
    mixed = np.array([s.covariates["CYP3A5_EXPR"] for s in by_group["mixed"]])
    assert mixed.mean() == pytest.approx(0.5, abs=0.04)  # Intermediate + Normal -> 1


def test_bad_genotype_distributions() -> None:
    bad = {"CYP3A5_EXPR": {"dist": "genotype", "frequencies": {"Rapid Metabolizer": 1.0}}}
    with pytest.raises(SchemaError, match="calls not on the card"):
        parse_distributions(bad, CARD, "test")
    with pytest.raises(SchemaError, match="not a genotype covariate"):
        parse_distributions({"WT": {"dist": "genotype", "frequencies": {"x": 1.0}}}, CARD, "test")
    with pytest.raises(SchemaError, match="add up to 1"):
        parse_distributions(
            {"CYP3A5_EXPR": {"dist": "genotype", "frequencies": {"Poor Metabolizer": 0.5}}}, CARD, "test"
        )


def test_condition_prevalence_and_derived_covariates_are_joint() -> None:
    data = CARD.model_dump(mode="json")
    data["covariates"] += [
        {
            "name": "NS",
            "source": {"condition": {"codes": [{"system": "http://snomed.info/sct", "code": "52254009"}]}},
            "to_model": False,
        },
        {
            "name": "HT",
            "source": {"measurement": {"system": "http://loinc.org", "code": "8302-2"}, "unit": "cm"},
            "to_model": False,
        },
        {
            "name": "BSA",
            "source": {"derived": {"formula": "bsa_mosteller", "inputs": {"weight": "WT", "height": "HT"}}},
            "to_model": False,
        },
    ]
    card = ModelCard.model_validate(data)
    pop = parse_distributions(
        {
            "WT": {"dist": "uniform", "low": 20, "high": 40},
            "HT": {"dist": "uniform", "low": 120, "high": 150},
            "NS": {"dist": "bernoulli", "p": 0.2},
            "CYP3A5_EXPR": {"dist": "bernoulli", "p": 0.5},
        },
        card,
        "test",
    )
    subjects = [draw_subject(card, pop, 9, i) for i in range(1000)]
    assert np.mean([s.covariates["NS"] for s in subjects]) == pytest.approx(0.2, abs=0.04)
    for s in subjects[:50]:
        c = s.covariates
        assert c["BSA"] == pytest.approx((c["HT"] * c["WT"] / 3600) ** 0.5)


def test_cohort_from_the_design_file_writes_records_that_bind_back(tmp_path: Path) -> None:
    design = Design.model_validate(
        {
            "doses": [{"route": "oral", "amount": 0.05, "per": "WT", "interval_h": 12, "additional": 5}],
            "sampling_h": [11.5, 61, 71.5],
            "covariates": POPULATIONS,
        }
    )
    res = simulate_cohort(SBML, CARD, design, 12, tmp_path, scheduler="single", records=True, seed=3)
    assert res.n_failed == 0 and res.cohort_dir is not None
    import pandas as pd

    subjects = pd.read_parquet(res.subjects_path)
    assert set(subjects["population"]) <= {"all-expressers", "mixed"}
    truth = dict(zip(subjects["patient_id"], subjects["cov_CYP3A5_EXPR"], strict=True))
    for rec in read_cohort(res.cohort_dir):
        assert rec.genotypes[0].gene == "CYP3A5"
        bound = baseline_values(CARD, rec)
        assert bound["CYP3A5_EXPR"] == truth[rec.patient.id]


def test_validation_reports_metrics_per_phenotype(tmp_path: Path) -> None:
    import pandas as pd

    from interop.validation import run_validation

    design = Design.model_validate(
        {
            "doses": [{"route": "oral", "amount": 0.05, "per": "WT", "interval_h": 12, "additional": 5}],
            "sampling_h": [11.5, 61, 71.5],
            "covariates": POPULATIONS,
        }
    )
    res = simulate_cohort(SBML, CARD, design, 16, tmp_path / "sim", scheduler="single", records=True, seed=4)
    assert res.cohort_dir is not None
    records = list(read_cohort(res.cohort_dir))
    out = run_validation(
        SBML, CARD, records, tmp_path / "val", model_version=1, site="s", n_sim=20, n_boot=20,
        iterative=False, scheduler="single",
    )  # fmt: skip
    sg = out.summary.subgroups
    phenotypes = {r.genotypes[0].phenotype for r in records}
    assert set(sg["group"]) == {f"CYP3A5 {p}" for p in phenotypes}
    mape = sg[(sg["name"] == "mape_percent") & (sg["setting"] == "a-priori")]
    # each group's patients add up to the cohort, and each group's metric is computed on its own levels
    assert mape["patients"].sum() == out.summary.n_included
    levels = out.levels[out.levels["used"].astype(bool)]
    groups = {r.patient.id: f"CYP3A5 {r.genotypes[0].phenotype}" for r in records}
    for row in mape.itertuples():
        g = levels[levels["patient_id"].map(groups) == row.group]
        expected = float((100 * (g["pred"] - g["dv"]).abs() / g["dv"]).mean())
        assert row.value == pytest.approx(expected)
    csv = pd.read_csv(tmp_path / "val" / "metrics_by_subgroup.csv")
    assert len(csv) == len(sg)
    assert "By covariate subgroup" in (tmp_path / "val" / "report.html").read_text()
