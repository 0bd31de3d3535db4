"""Write the SBML and card of the tacrolimus example model (run from the repository root).

    PYTHONPATH=. python interop/data/models/make_tacrolimus_card.py

Hao GX, Huang X, Zhang DF, Zheng Y, Shi HY, Li Y, Jacqz-Aigrain E, Zhao W. Population
pharmacokinetics of tacrolimus in children with nephrotic syndrome. Br J Clin Pharmacol
2018;84(8):1748-1756. doi:10.1111/bcp.13605 (PMC6046506). Every number below is from its
Table 2 ("Population pharmacokinetic parameters of tacrolimus and bootstrap validation"), read
on PMC; the card says so parameter by parameter. The reference output is the closed-form
one-compartment solution, computed here independently of libRoadRunner.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import antimony

from interop.schema import ModelCard

HERE = Path(__file__).resolve().parent
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TACROLIMUS = {"system": RXNORM, "code": "42316", "display": "tacrolimus"}
TABLE2 = "Hao 2018, Table 2 (final model)"
KA, V70, CL70, THETA3 = 5.21, 411.0, 30.9, 1.60
CV = {"ETA_KA": 0.791, "ETA_V": 0.994, "ETA_CL": 0.438}  # Table 2, inter-individual variability (%)


def omega(cv: float) -> float:
    """Variance of a log-normal ETA from its CV (exact: ln(1 + CV^2))."""
    return math.log1p(cv**2)


def closed_form(dose_mg: float, wt: float, expr: int, times: list[float]) -> list[float]:
    v = V70 * wt / 70
    cl = CL70 * (wt / 70) ** 0.75 * THETA3**expr
    k = cl / v
    return [dose_mg * KA / (v * (KA - k)) * (math.exp(-k * t) - math.exp(-KA * t)) * 1000 for t in times]


def card() -> dict:
    times = [0.5, 1.0, 4.0, 12.0, 24.0]
    return {
        "schema_version": "1.1",
        "id": "tacrolimus-hao2018",
        "version": "1",
        "title": "Tacrolimus in children with nephrotic syndrome, CYP3A5-informed (Hao 2018)",
        "description": (
            "One-compartment model with first-order absorption for twice-daily oral immediate-release "
            "tacrolimus in children (2.7-17.3 years) with nephrotic syndrome. CL/F = 30.9 L/h * (WT/70)^0.75 "
            "* 1.60 for CYP3A5 expressers (*1/*1 or *1/*3), 1 for *3/*3; V/F = 411 L * WT/70; ka 5.21 /h. "
            "All values: Hao 2018 Table 2. Omega is ln(1 + CV^2) of the %CV in Table 2 (our conversion: "
            "the table gives CVs, not variances). The residual error is the table's exponential model, "
            "25.9 %. CYP3A5 status comes from the record's CYP3A5 phenotype call (Normal or Intermediate "
            "Metabolizer: expresser; Poor Metabolizer: non-expresser); an untested or uncertain call is an "
            "error, never the reference, because the paper has no 'unknown' group. The validity weight "
            "range (12.9-81.0 kg) is the study's range as transcribed from Table 1 by nlmixr2lib "
            "(Hao_2018_tacrolimus.R); it was not checked against the paper here."
        ),
        "drugs": [
            TACROLIMUS,
            {"system": "http://www.whocc.no/atc", "code": "L04AD02", "display": "tacrolimus"},
        ],
        "publications": [
            {
                "doi": "10.1111/bcp.13605",
                "citation": "Hao GX, Huang X, Zhang DF, Zheng Y, Shi HY, Li Y, Jacqz-Aigrain E, Zhao W. "
                "Population pharmacokinetics of tacrolimus in children with nephrotic syndrome. "
                "Br J Clin Pharmacol 2018;84(8):1748-1756 (PMC6046506)",
            }
        ],
        "contributors": [{"name": "digphat-interop developers"}],
        "institution": "digphat",
        "licence": "CC-BY-4.0",
        "dosing": [{"route": "oral", "target": "A_depot", "amount_unit": "mg"}],
        "observables": [
            {
                "id": "tacrolimus",
                "sbml": "Cc",
                "unit": "ug/L",
                "analyte": TACROLIMUS,
                "measurement_codes": [
                    {
                        "system": "http://loinc.org",
                        "code": "11253-2",
                        "display": "Tacrolimus [Mass/volume] in Blood",
                    }
                ],
            }
        ],
        "covariates": [
            {
                "name": "WT",
                "source": {
                    "measurement": {
                        "system": "http://loinc.org",
                        "code": "29463-7",
                        "display": "Body weight",
                    },
                    "unit": "kg",
                },
                "unit": "kg",
                "reference": 70,
                "missing": "error",
            },
            {
                "name": "CYP3A5_EXPR",
                "source": {
                    "genotype": {
                        "gene": "CYP3A5",
                        "read": "phenotype",
                        "values": {
                            "Normal Metabolizer": 1,
                            "Intermediate Metabolizer": 1,
                            "Poor Metabolizer": 0,
                        },
                    }
                },
                "unit": "1",
                "reference": 0,
                "missing": "error",
            },
        ],
        "parameters": [
            {
                "id": "TVKA",
                "value": KA,
                "unit": "/h",
                "description": "absorption rate constant ka",
                "source": TABLE2,
            },
            {
                "id": "TVV",
                "value": V70,
                "unit": "L",
                "description": "V/F at 70 kg (theta1)",
                "source": TABLE2,
            },
            {
                "id": "TVCL",
                "value": CL70,
                "unit": "L/h",
                "description": "CL/F at 70 kg, CYP3A5 *3/*3 (theta2)",
                "source": TABLE2,
            },
            {
                "id": "THETA_CYP3A5",
                "value": THETA3,
                "unit": "1",
                "description": "CL/F factor for CYP3A5 *1/*1 or *1/*3 (theta3)",
                "source": TABLE2,
            },
        ],
        "random_effects": {
            "etas": list(CV),
            "omega": [[omega(CV[a]) if a == b else 0.0 for b in CV] for a in CV],
        },
        "residual_error": [{"observable": "tacrolimus", "model": "exponential", "proportional_sd": 0.259}],
        "validity": {
            "population": "children 2.7-17.3 years with nephrotic syndrome, twice-daily oral Prograf",
            "covariate_ranges": {"WT": [12.9, 81.0]},
        },
        "reference_outputs": [
            {
                "description": "1.5 mg oral, 30 kg CYP3A5 expresser: closed-form one-compartment solution",
                "observable": "tacrolimus",
                "doses": [{"route": "oral", "amount": 1.5, "time_h": 0}],
                "covariates": {"WT": 30, "CYP3A5_EXPR": 1},
                "times_h": times,
                "values": closed_form(1.5, 30, 1, times),
                "rtol": 1e-6,
            }
        ],
    }


def main() -> None:
    antimony.clearPreviousLoads()
    if antimony.loadAntimonyString((HERE / "tacrolimus_hao2018.ant").read_text()) < 0:
        raise SystemExit(antimony.getLastError())
    (HERE / "tacrolimus_hao2018.xml").write_text(antimony.getSBMLString("tacrolimus_hao2018"))
    data = ModelCard.model_validate(card()).model_dump(mode="json")
    (HERE / "tacrolimus_hao2018.card.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
