"""Write the hybrid example's model files (run from the repository root; synthetic, CC0):

    PYTHONPATH=. python interop/data/examples/hybrid/make_files.py

- ``model.xml``: the demo gentamicin SBML with CRCL a parameter (a card covariate, Cockcroft-Gault
  computed by the card) instead of an SBML rule, so a hybrid card can hold it at its reference;
- ``mechanistic.card.json``: the published covariate model, CL = TVCL * CRCL/100 * exp(ETA_CL);
- ``hybrid.card.json``: the same with the ML model ``hybrid-example-cl@1`` replacing TVCL;
- ``truth.json``: the truth the data generator simulates (interop.workflows.hybrid_example.TRUTH).
"""

from __future__ import annotations

import json
from pathlib import Path

import libsbml

from interop.workflows.hybrid_example import TRUTH

HERE = Path(__file__).resolve().parent
MODELS = HERE.parents[1] / "models"


def model_xml() -> str:
    doc = libsbml.readSBMLFromFile(str(MODELS / "gentamicin_1cmt.xml"))
    m = doc.getModel()
    m.setId("hybrid_example")
    m.removeRuleByVariable("CRCL")
    p = m.getParameter("CRCL")
    p.setValue(100.0)
    p.setConstant(False)
    return str(libsbml.writeSBMLToString(doc))


def reference_output(card: dict) -> dict:
    """A typical patient's regimen simulated with this model (a bare regimen: no ML applies)."""
    from interop.schema import ModelCard, ReferenceDose, parse
    from interop.twin import bind_regimen, load_model, simulate

    model = load_model(model_xml(), parse(ModelCard, card))
    dose = ReferenceDose(route="iv-infusion", amount=350, time_h=0, duration_h=0.5)
    covs = {"WT": 70.0, "SCR": 1.0, "AGE": 50.0, "SEX": 0.0}
    times = [1.0, 6.0, 12.0, 24.0]
    values = simulate(bind_regimen(model, (dose,), covs), times).values["gentamicin"]
    return {
        "description": "350 mg over 0.5 h, typical 70 kg man of 50 with serum creatinine 1 mg/dL",
        "observable": "gentamicin",
        "doses": [dose.model_dump(mode="json")],
        "covariates": covs,
        "times_h": times,
        "values": [float(v) for v in values],
        "rtol": 1e-6,
    }


def cards() -> tuple[dict, dict]:
    card = json.loads((MODELS / "gentamicin_1cmt.card.json").read_text())
    covs = {c["name"]: c for c in card["covariates"]}
    for name in ("SCR", "AGE", "SEX"):
        covs[name]["to_model"] = False
    covs["SCR"]["missing"] = "error"
    crcl = {
        "name": "CRCL",
        "source": {
            "derived": {
                "formula": "cockcroft_gault",
                "inputs": {"age": "AGE", "weight": "WT", "scr": "SCR", "female": "SEX"},
            }
        },
        "reference": 100,
        "unit": "mL/min",
    }
    card.update(
        schema_version="1.2",
        id="hybrid-example-mech",
        title="Hybrid example: published one-compartment model, CL proportional to Cockcroft-Gault",
        description="The hub's demo gentamicin model with CRCL a card covariate: CL = TVCL*(CRCL/100)*"
        "exp(ETA_CL), V = TVV*(WT/70)*exp(ETA_V). Synthetic example (docs/ml-models.md).",
        covariates=[covs["WT"], covs["SCR"], covs["AGE"], covs["SEX"], crcl],
        reference_outputs=[],
    )
    card["reference_outputs"] = [reference_output(card)]
    card["validity"]["covariate_ranges"] = {"WT": [40, 130]}
    hybrid = {
        **card,
        "id": "hybrid-example-hybrid",
        "title": "Hybrid example: the same model, typical clearance from an ML model",
        "ml_models": [
            {
                "model": "hybrid-example-cl@1",
                "role": "typical_value",
                "parameter": "TVCL",
                "mode": "replace",
                "replaces_covariates": ["CRCL"],
                "on_missing": "mechanistic",
            }
        ],
    }
    return card, hybrid


if __name__ == "__main__":
    (HERE / "model.xml").write_text(model_xml())
    mech, hybrid = cards()
    (HERE / "mechanistic.card.json").write_text(json.dumps(mech, indent=2) + "\n")
    (HERE / "hybrid.card.json").write_text(json.dumps(hybrid, indent=2) + "\n")
    (HERE / "truth.json").write_text(json.dumps(TRUTH, indent=2) + "\n")
