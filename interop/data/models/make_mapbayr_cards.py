"""Write the model cards of the four mapbayr validation models (run from the repository root).

    PYTHONPATH=. python interop/data/models/make_mapbayr_cards.py

The models are those of the mapbayr validation study (Le Louedec et al., CPT Pharmacometrics
Syst Pharmacol 2021; data and NONMEM estimates in ``../shared/data/mapbayr``). The drugs are
simulated, so analytes use a local code system.
"""

from __future__ import annotations

from pathlib import Path

from interop.schema import ModelCard

HERE = Path(__file__).resolve().parent
SYSTEM = "urn:digphat:mapbayr"  # simulated drugs of the mapbayr study: no RxNorm code exists
SIGMA_SD = 0.05**0.5  # NONMEM SIGMA 0.05 is a variance
PUB = {"doi": "10.1002/psp4.12689", "citation": "Le Louedec F et al. mapbayr validation, CPT PSP 2021"}
LOINC_WT = {"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}


def parent(model: str) -> dict:
    return {"system": SYSTEM, "code": f"{model}-parent", "display": f"mapbayr {model} parent drug"}


def card(model: str, title: str, etas: list[str], **extra: object) -> dict:
    n = len(etas)
    omega = [[0.2 if i == j else 0.0 for j in range(n)] for i in range(n)]
    base: dict = {
        "id": f"mapbayr-{model}",
        "version": "1",
        "title": title,
        "description": "Model of the mapbayr validation study; NONMEM POSTHOC estimates in "
        "../shared/data/mapbayr reproduce with interop twin compare-nonmem.",
        "drugs": [parent(model)],
        "publications": [PUB],
        "contributors": [{"name": "digphat-interop developers"}],
        "institution": "digphat",
        "licence": "CC0-1.0",
        "dosing": [{"route": "oral", "target": "A_depot", "amount_unit": "mg"}],
        "observables": [{"id": "parent", "sbml": "Cc", "unit": "mg/L", "analyte": parent(model)}],
        "random_effects": {"etas": etas, "omega": omega},
        "residual_error": [{"observable": "parent", "model": "proportional", "proportional_sd": SIGMA_SD}],
    }
    base.update(extra)
    return base


CARDS = {
    "001": card("001", "mapbayr 001: one compartment, first-order absorption", ["ETA_CL", "ETA_V", "ETA_KA"]),
    "006": card(
        "006",
        "mapbayr 006: one compartment, split dose (20% first order, 80% zero order over D2)",
        ["ETA_CL", "ETA_V", "ETA_KA", "ETA_D2"],
        dosing=[
            {"route": "oral", "fraction": 0.2, "target": "A_depot", "amount_unit": "mg"},
            {
                "route": "oral",
                "fraction": 0.8,
                "target": "A_central",
                "amount_unit": "mg",
                "duration_parameter": "D2",
            },
        ],
    ),
    "301": card(
        "301",
        "mapbayr 301: one compartment, first-order absorption, weight and sex on clearance",
        ["ETA_CL", "ETA_V", "ETA_KA"],
        covariates=[
            {"name": "BW", "source": {"measurement": LOINC_WT, "unit": "kg"}, "reference": 75},
            {
                "name": "SEX",
                "source": {
                    "measurement": {
                        "system": "urn:digphat:nonmem-covariate",
                        "code": "SEX",
                        "display": "sex, 1 female",
                    },
                    "unit": "1",
                },
                "reference": 0,
            },
        ],
    ),
    "401": card(
        "401",
        "mapbayr 401: parent with first-order absorption and a metabolite",
        ["ETA_CL", "ETA_V", "ETA_KA", "ETA_CLMET", "ETA_VMET"],
        observables=[
            {"id": "parent", "sbml": "Cc", "unit": "mg/L", "analyte": parent("401")},
            {
                "id": "metabolite",
                "sbml": "Cm",
                "unit": "mg/L",
                "analyte": {"system": SYSTEM, "code": "401-metabolite", "display": "mapbayr 401 metabolite"},
            },
        ],
        residual_error=[
            {"observable": "parent", "model": "proportional", "proportional_sd": SIGMA_SD},
            {"observable": "metabolite", "model": "proportional", "proportional_sd": SIGMA_SD},
        ],
    ),
}

if __name__ == "__main__":
    for model, data in CARDS.items():
        c = ModelCard.model_validate(data)
        (HERE / f"mapbayr_{model}.card.json").write_text(
            c.model_dump_json(indent=2, exclude_defaults=False) + "\n"
        )
        print("wrote", f"mapbayr_{model}.card.json")
