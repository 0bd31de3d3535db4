"""A site's mapping table maps measurement codes of any system (SNOMED CT, local codes), and a
card covariate binds to them by that system and code."""

from __future__ import annotations

import json
from pathlib import Path

from converters.fhir import convert_bundle_file
from interop.schema import SNOMED
from interop.twin.covariates import bind_covariates
from tests.covariates.records import card_with

KEY = b"site-codes-test-key-0123456789"
LOCAL = "urn:example:site-lab"


def test_snomed_and_local_measurement_codes(tmp_path: Path) -> None:
    table = tmp_path / "site.csv"
    table.write_text(
        "# version: test-1\n"
        "system,code,display,category,unit,kind,analyte_system,analyte_code,analyte_display,matrix,molar_mass,min,max\n"
        f"{SNOMED},27113001,Body weight,vital-sign,kg,weight,,,,,,0.2,500\n"
        f"{LOCAL},CREA-S,Creatinine (site code),laboratory,mg/dL,creatinine,,,,,113.12,0.01,40\n"
    )
    patient = {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:x", "value": "1"}]}

    def obs(oid: str, system: str, code: str, value: float, unit: str) -> dict:
        return {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2026-01-01T08:00:00Z",
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        }

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": r}
            for r in (
                patient,
                obs("o1", SNOMED, "27113001", 72500, "g"),
                obs("o2", LOCAL, "CREA-S", 88.4, "umol/L"),
            )
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    without = convert_bundle_file(path, KEY)
    assert not without.records or not without.records[0].measurements  # unmapped without the site table
    result = convert_bundle_file(path, KEY, extra_tables=(table,))
    (rec,) = result.records
    by_system = {m.code.system: m for m in rec.measurements}
    assert by_system[SNOMED].value == 72.5 and by_system[SNOMED].unit == "kg"
    assert abs(by_system[LOCAL].value - 88.4 / 88.42) < 1e-3  # umol/L -> mg/dL with the molar mass
    card = card_with(
        [
            {"name": "WT", "source": {"measurement": {"system": SNOMED, "code": "27113001"}, "unit": "kg"}},
            {"name": "SCR", "source": {"measurement": {"system": LOCAL, "code": "CREA-S"}, "unit": "mg/dL"}},
        ]
    )
    report = bind_covariates(card, rec, by_system[SNOMED].time)
    assert [b.series.at(0) for b in report.bindings] == [72.5, by_system[LOCAL].value]
