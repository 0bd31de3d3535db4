"""Each step of the walking skeleton on real files: FHIR -> record, registry, twin."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import tellurium as te

from converters import convert_bundle_file
from interop.errors import IntegrityError, NotFoundError, TwinError
from interop.schema import ModelCard, parse_json
from interop.twin import bind_patient, check_reference_outputs, load_model, simulate_observations
from registry import open_registry
from tests.data import DEMO, FHIR_R4_SPEC, FHIR_SYNTHEA, GENTAMICIN_ANT, GENTAMICIN_CARD, GENTAMICIN_SBML

KEY = b"test-key-0123456789abcdef"
BUNDLE = DEMO / "gentamicin_patient.json"


def card() -> ModelCard:
    return parse_json(ModelCard, GENTAMICIN_CARD.read_text())


def test_fhir_bundle_becomes_a_pseudonymised_record() -> None:
    res = convert_bundle_file(BUNDLE, KEY)
    assert res.report.balanced()
    (rec,) = res.records
    raw = BUNDLE.read_text()
    assert "MRN-0042-DEMO" in raw and "MRN-0042-DEMO" not in rec.model_dump_json()
    assert rec.patient.sex == "female"
    codes = sorted(m.code.code for m in rec.measurements)
    # creatinine sent as 2160-0 in umol/L: one analyte (14682-9) in umol/L (interop.schema.analytes)
    assert codes == sorted(["29463-7", "8302-2", "14682-9", "14682-9"] + ["35668-3"] * 4)
    scr = sorted((m for m in rec.measurements if m.code.code == "14682-9"), key=lambda m: m.time)
    assert scr[0].original_unit == "umol/L" and scr[0].unit == "umol/L"
    assert scr[0].value == pytest.approx(97.2)
    assert any(t.kind == "code-mapping" for t in scr[0].provenance.transformations)
    bolus, infusion = rec.administered_doses()
    assert (bolus.route, bolus.amount) == ("iv-bolus", 160)
    assert (infusion.route, infusion.duration_h) == ("iv-infusion", 0.5)
    assert all(m.drug_level and m.drug_level.analyte.code == "1596450" for m in rec.drug_levels())
    # The same key gives the same pseudonym; another key another one.
    assert convert_bundle_file(BUNDLE, KEY).records[0].patient.id == rec.patient.id
    assert convert_bundle_file(BUNDLE, KEY[::-1]).records[0].patient.id != rec.patient.id


def test_real_synthea_bundle_counts_add_up() -> None:
    path = sorted(FHIR_SYNTHEA.glob("*.json"))[0]
    res = convert_bundle_file(path, KEY)
    assert res.report.balanced()
    total = json.loads(path.read_text())["entry"]
    assert sum(res.report.read.values()) == len(total)
    (rec,) = res.records
    assert any(m.code.code == "29463-7" for m in rec.measurements)  # weights from Synthea vitals


def test_r4_spec_weight_in_pounds_is_converted() -> None:
    obs = json.loads((FHIR_R4_SPEC / "Observation-example.json").read_text())
    patient = json.loads((FHIR_R4_SPEC / "Patient-example.json").read_text())
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": obs}],
    }
    from converters import convert_bundle

    (rec,) = convert_bundle(bundle, KEY).records
    (weight,) = rec.measurements
    assert weight.unit == "kg" and weight.original_unit == "[lb_av]"
    assert weight.value == pytest.approx(185 * 0.45359237)


def test_registry_stores_and_reads_back(tmp_path: Path) -> None:
    reg = open_registry(f"sqlite:///{tmp_path / 'r.sqlite'}", tmp_path / "blobs")
    sbml = GENTAMICIN_SBML.read_text()
    v1 = reg.submit(sbml, card())
    assert reg.submit(sbml, card()).version == v1.version == 1  # identical content, same version
    v2 = reg.submit(sbml, card().replace(description="edited"))
    assert v2.version == 2
    back = reg.get("gentamicin-1cmt", 1)
    assert back.sbml == sbml and back.card == card()
    assert reg.get("gentamicin-1cmt").version == 2
    with pytest.raises(NotFoundError):
        reg.get("gentamicin-1cmt", 9)
    blob = reg.blobs.path(back.sbml_sha256)
    blob.chmod(0o644)
    blob.write_text(sbml.replace("TVCL", "TVCX"))
    with pytest.raises(IntegrityError):
        reg.get("gentamicin-1cmt", 1)
    reg.close()


def test_card_reference_outputs_reproduced() -> None:
    model = load_model(GENTAMICIN_SBML.read_text(), card())
    checks = check_reference_outputs(model)
    assert len(checks) == 2 and all(c.passed for c in checks), checks


def test_twin_matches_a_direct_roadrunner_simulation() -> None:
    """Bind the demo patient and compare with roadrunner on a hand-written model: the bolus as the
    initial amount, the infusion as a piecewise input, the covariates set by hand."""
    rec = convert_bundle_file(BUNDLE, KEY).records[0]
    model = load_model(GENTAMICIN_SBML.read_text(), card())
    twin = bind_patient(model, rec)
    etas = {"ETA_CL": 0.2, "ETA_V": -0.1}
    ours = simulate_observations(twin, etas)

    times = [o.time_h for o in twin.observations]
    assert times == [1.0, 8.0, 25.0, 36.0]
    # A laboratory value is known from its time on (carried forward): the day-1 creatinine (97.2 umol/L
    # under LOINC 14682-9, the same analyte as 2160-0: 1.0995 mg/dL) holds until the day-2 value
    # (1.3 mg/dL) measured 23 h after the first dose.
    scr = twin.covariates["SCR"]
    assert scr.at(0.0) == pytest.approx(97.2 * 113.12 / 10_000, rel=1e-4)
    assert scr.at(23.5) == pytest.approx(1.3)
    ant = GENTAMICIN_ANT.read_text().replace(
        "end",
        "  A_central = 160\n  infusion: -> A_central; piecewise(640, time >= 24 && time < 24.5, 0)\n"
        "  at (time >= 23): SCR = 1.3\nend",
    )
    r = te.loada(ant)
    r.getIntegrator().setValue("relative_tolerance", 1e-10)
    r.getIntegrator().setValue("absolute_tolerance", 1e-12)
    r.getIntegrator().setValue("maximum_time_step", 0.01)
    age = (dt.date(2026, 3, 2) - dt.date(1964, 3, 12)).days / 365.25
    for k, v in {"WT": 68.0, "AGE": age, "SEX": 1.0, "SCR": scr.at(0.0), **etas}.items():
        r[k] = v
    res = r.simulate(times=[0.0, *times], selections=["time", "Cc"])
    np.testing.assert_allclose(ours, res[1:, 1], rtol=1e-6)


def test_twin_errors_are_typed() -> None:
    rec = convert_bundle_file(BUNDLE, KEY).records[0]
    model = load_model(GENTAMICIN_SBML.read_text(), card())
    no_doses = rec.replace(doses=())
    with pytest.raises(TwinError, match="no administered dose"):
        bind_patient(model, no_doses)
    no_weight = rec.replace(
        measurements=tuple(m.model_dump() for m in rec.measurements if m.code.code != "29463-7")
    )
    with pytest.raises(TwinError, match="WT"):
        bind_patient(model, no_weight)
