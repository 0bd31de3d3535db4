"""Write the tacrolimus example: a FHIR bundle, a VCF and the sample mapping (run from the
repository root). Synthetic data written for this project (no real person), licence CC0.

    PYTHONPATH=. python interop/data/examples/tacrolimus/make_example.py

Two 9-year-old children with nephrotic syndrome, 30 kg, both given oral tacrolimus 1.5 mg every
12 h, with the same first trough (before the second dose): clinically indistinguishable. Only
their CYP3A5 genotype differs: MRN-TAC-001 is *1/*3 (expresser), MRN-TAC-002 is *3/*3
(non-expresser). The trough was simulated from ``tacrolimus_hao2018`` for a typical
non-expresser (all ETAs 0) and multiplied by a fixed residual factor 1.04.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

from interop.schema import ModelCard, ReferenceDose, parse_json
from interop.twin import bind_regimen, load_model, simulate

HERE = Path(__file__).resolve().parent
MODELS = HERE.parents[1] / "models"
START = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
SYSTEM = "urn:oid:2.999.1.1.1"
PATIENTS = {"MRN-TAC-001": ("S-EXP", "*1/*3"), "MRN-TAC-002": ("S-NON", "*3/*3")}
DOSE_MG, INTERVAL_H, N_DOSES, WEIGHT = 1.5, 12.0, 6, 30.0
LEVEL_TIMES_H, FACTORS = (11.5,), (1.04,)
NS = uuid.UUID("6c1f8e1a-4a0b-4b8e-9d55-0a1c2e3f4b5d")


def _iso(hours: float) -> str:
    return (START + dt.timedelta(hours=hours)).isoformat()


def _entry(resource: dict) -> dict:
    full = f"urn:uuid:{uuid.uuid5(NS, resource['resourceType'] + resource['id'])}"
    return {
        "fullUrl": full,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def levels() -> list[float]:
    """The two levels of a typical non-expresser (simulated), times the residual factors."""
    card = parse_json(ModelCard, (MODELS / "tacrolimus_hao2018.card.json").read_text())
    model = load_model((MODELS / "tacrolimus_hao2018.xml").read_text(), card)
    doses = tuple(
        ReferenceDose(route="oral", amount=DOSE_MG, time_h=k * INTERVAL_H) for k in range(N_DOSES + 1)
    )
    twin = bind_regimen(model, doses, {"WT": WEIGHT, "CYP3A5_EXPR": 0})
    pred = simulate(twin, list(LEVEL_TIMES_H)).values["tacrolimus"]
    return [round(float(p) * f, 2) for p, f in zip(pred, FACTORS, strict=True)]


def bundle() -> dict:
    observed = levels()
    entries = []
    for mrn in PATIENTS:
        key = mrn.lower()
        patient = {
            "resourceType": "Patient",
            "id": f"pt-{key}",
            "identifier": [{"system": SYSTEM, "value": mrn}],
            "gender": "female" if mrn.endswith("1") else "male",
            "birthDate": "2017-02-10",
        }
        pref = {"reference": _entry(patient)["fullUrl"]}
        entries.append(_entry(patient))
        entries.append(
            _entry(
                {
                    "resourceType": "Condition",
                    "id": f"ns-{key}",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {
                        "coding": [
                            {
                                "system": "http://snomed.info/sct",
                                "code": "52254009",
                                "display": "Nephrotic syndrome",
                            }
                        ]
                    },
                    "subject": pref,
                    "onsetDateTime": _iso(-24 * 30),
                }
            )
        )
        entries.append(
            _entry(
                {
                    "resourceType": "Observation",
                    "id": f"wt-{key}",
                    "status": "final",
                    "code": {
                        "coding": [
                            {"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}
                        ]
                    },
                    "subject": pref,
                    "effectiveDateTime": _iso(-1),
                    "valueQuantity": {
                        "value": WEIGHT,
                        "unit": "kg",
                        "system": "http://unitsofmeasure.org",
                        "code": "kg",
                    },
                }
            )
        )
        for k in range(N_DOSES):
            entries.append(
                _entry(
                    {
                        "resourceType": "MedicationAdministration",
                        "id": f"ma-{key}-{k + 1}",
                        "status": "completed",
                        "medicationCodeableConcept": {
                            "coding": [
                                {
                                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                    "code": "42316",
                                    "display": "tacrolimus",
                                }
                            ]
                        },
                        "subject": pref,
                        "effectiveDateTime": _iso(k * INTERVAL_H),
                        "dosage": {
                            "route": {
                                "coding": [
                                    {
                                        "system": "http://snomed.info/sct",
                                        "code": "26643006",
                                        "display": "Oral route",
                                    }
                                ]
                            },
                            "dose": {
                                "value": DOSE_MG,
                                "unit": "mg",
                                "system": "http://unitsofmeasure.org",
                                "code": "mg",
                            },
                        },
                    }
                )
            )
        for k, (t, value) in enumerate(zip(LEVEL_TIMES_H, observed, strict=True)):
            entries.append(
                _entry(
                    {
                        "resourceType": "Observation",
                        "id": f"lvl-{key}-{k + 1}",
                        "status": "final",
                        "code": {
                            "coding": [
                                {
                                    "system": "http://loinc.org",
                                    "code": "11253-2",
                                    "display": "Tacrolimus [Mass/volume] in Blood",
                                }
                            ]
                        },
                        "subject": pref,
                        "effectiveDateTime": _iso(t),
                        "valueQuantity": {
                            "value": value,
                            "unit": "ng/mL",
                            "system": "http://unitsofmeasure.org",
                            "code": "ng/mL",
                        },
                    }
                )
            )
    return {
        "resourceType": "Bundle",
        "id": "interop-example-tacrolimus",
        "type": "transaction",
        "entry": entries,
    }


# CYP3A5 positions (GRCh38) of the shipped definition; *3 is rs776746 C.
def _positions() -> list[tuple[str, int, str, str]]:
    """Every defining position of CYP3A5 in the shipped allele definitions: a panel reads them all,
    and a position missing from the file would make the call uncertain."""
    from converters.omics.definitions import load_definition

    d = load_definition("CYP3A5")
    return [(p.id, p.pos, p.ref, p.alts[0]) for p in d.positions]


def vcf() -> str:
    samples = [s for s, _ in PATIENTS.values()]
    lines = [
        "##fileformat=VCFv4.2",
        "##reference=GRCh38",
        "##contig=<ID=chr7,assembly=GRCh38>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]),
    ]
    for rs, pos, ref, alt in _positions():
        gts = []
        for _, diplotype in PATIENTS.values():
            star3 = diplotype.count("*3")
            gts.append({0: "0/0", 1: "0/1", 2: "1/1"}[star3] if rs == "rs776746" else "0/0")
        lines.append("\t".join(["chr7", str(pos), rs, ref, alt, ".", "PASS", ".", "GT", *gts]))
    return "\n".join(lines) + "\n"


def main() -> None:
    (HERE / "bundle.json").write_text(json.dumps(bundle(), indent=1) + "\n")
    (HERE / "cyp3a5.vcf").write_text(vcf())
    rows = ["sample_id,patient_id", *(f"{s},{SYSTEM}|{mrn}" for mrn, (s, _) in PATIENTS.items())]
    (HERE / "samples.csv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
