"""Fidelity on real-shaped feeds: unitless doses of RxNorm clinical drugs, infusions by rate,
as-received values through export, the date-shift marker, and XML input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from converters.fhir import convert_bundle, convert_bundle_file
from converters.fhir.export import export_bundle
from interop.schema import RXNORM
from interop.schema.cohort import write_cohort
from tests import data
from tests.fhir.conftest import KEY, collection, load, pat1, rid, weight_of_pat1


def synthea_order(code: str, display: str | None, value: float = 2, rid_: str = "mr-1") -> dict[str, Any]:
    """A MedicationRequest as Synthea writes it: RxNorm clinical drug, dose without a unit."""
    coding: dict[str, Any] = {"system": RXNORM, "code": code}
    if display:
        coding["display"] = display
    return {
        "resourceType": "MedicationRequest",
        "id": rid_,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [coding], "text": display},
        "subject": {"reference": "Patient/pat1"},
        "authoredOn": "2015-01-15T08:00:00+01:00",
        "dosageInstruction": [
            {
                "sequence": 1,
                "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
                "asNeededBoolean": False,
                "doseAndRate": [{"doseQuantity": {"value": value}}],
            }
        ],
    }


def _dose_or_issue(order: dict[str, Any], **kw: Any):
    res = convert_bundle(collection(pat1(), order), KEY, **kw)
    assert res.report.balanced()
    doses = res.records[0].doses
    return (doses[0] if doses else None), res.report


def test_unitless_dose_of_a_clinical_drug_gets_its_strength_from_the_shipped_table():
    dose, report = _dose_or_issue(synthea_order("313782", "Acetaminophen 325 MG Oral Tablet"))
    assert (dose.amount, dose.unit, dose.status) == (650.0, "mg", "ordered")
    assert (dose.original_amount, dose.original_unit) == (2.0, None)  # as received: two tablets
    assert dose.interval_h == 6.0
    derived = [t.detail for t in dose.provenance.transformations if t.kind == "derivation"]
    assert any("rxnorm_strengths.csv@" in d for d in derived)  # flagged derived, table and version named
    assert report.flags["dose strength from the strength table"] == 1


def test_unitless_dose_strength_from_the_normalised_name_when_the_table_lacks_the_code():
    dose, report = _dose_or_issue(synthea_order("861007", "Metformin hydrochloride 500 MG Oral Tablet", 1))
    assert (dose.amount, dose.unit) == (500.0, "mg")
    assert any("RxNorm name of 861007" in t.detail for t in dose.provenance.transformations)
    assert report.flags["dose strength from the RxNorm name"] == 1


def test_a_site_strength_table_overrides_the_shipped_one(tmp_path: Path):
    site = tmp_path / "site_strengths.csv"
    site.write_text("# version: site-7\nrxcui,strength,strength_unit,per,per_unit,name\n313782,0.5,g,1,1,x\n")
    bundle = tmp_path / "b.json"
    bundle.write_text(
        json.dumps(collection(pat1(), synthea_order("313782", "Acetaminophen 325 MG Oral Tablet")))
    )
    (dose,) = convert_bundle_file(bundle, KEY, extra_tables=(site,)).records[0].doses
    assert (dose.amount, dose.unit) == (1000.0, "mg")  # 2 x 0.5 g
    assert any("site_strengths.csv@site-7" in t.detail for t in dose.provenance.transformations)


@pytest.mark.parametrize(
    ("code", "display", "why"),
    [
        (
            "562251",
            "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet",
            "combination product (2 ingredients)",
        ),
        (
            "1043400",
            "Acetaminophen 21.7 MG/ML Oral Solution",
            "strength per ml: a unitless dose is ambiguous",
        ),
        ("316049", "Hydrochlorothiazide 25 MG", "names no discrete dose form"),
        ("424242", None, "has no display and is not in the strength table"),
    ],
)
def test_what_cannot_be_resolved_is_rejected_with_the_reason(code, display, why):
    dose, report = _dose_or_issue(synthea_order(code, display))
    assert dose is None
    (issue,) = report.issues
    assert issue.outcome == "rejected" and why in issue.reason and issue.field == "dose.code"


def _infusion_by_rate() -> dict[str, Any]:
    ma = load(data.FHIR_MEDADMIN["0301"])  # vancomycin IV, start time only
    ma["status"] = "completed"
    ma["dosage"]["dose"] = {"value": 1000, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    ma["dosage"]["rateQuantity"] = {"value": 1000, "unit": "mg/h", "system": "http://unitsofmeasure.org"}
    ma["dosage"]["rateQuantity"]["code"] = "mg/h"
    return ma


def test_infusion_by_rate_lasts_amount_over_rate_and_the_cohort_carries_both(tmp_path: Path):
    rec = convert_bundle(collection(pat1(), _infusion_by_rate()), KEY).records[0]
    (dose,) = rec.doses
    assert (dose.route, dose.amount, dose.rate, dose.duration_h) == ("iv-infusion", 1000.0, 1000.0, 1.0)
    paths = write_cohort([rec], tmp_path)
    table = pq.read_table(paths["doses"]).to_pylist()
    assert {"duration_h", "rate"} <= set(table[0]) and (table[0]["duration_h"], table[0]["rate"]) == (
        1.0,
        1000.0,
    )


def test_as_received_values_and_units_survive_fhir_record_fhir_record():
    lb = weight_of_pat1()  # 185 [lb_av]
    feed = collection(
        pat1(), lb, synthea_order("313782", "Acetaminophen 325 MG Oral Tablet"), _infusion_by_rate()
    )
    first = convert_bundle(feed, KEY).records[0]
    again = convert_bundle(json.loads(json.dumps(export_bundle(first))), b"another-key-0123456789").records[0]
    for kind in ("measurements", "doses"):
        before = {i.id: i for i in getattr(first, kind)}
        after = {i.id: i for i in getattr(again, kind)}
        assert before.keys() == after.keys()
        for key, item in before.items():
            assert item == after[key].model_copy(update={"provenance": item.provenance})
    (weight,) = again.measurements
    assert (weight.original_value, weight.original_unit) == (185, "[lb_av]")


def test_dates_are_shifted_by_default_the_marker_survives_export_and_is_honoured():
    feed = collection(pat1(), weight_of_pat1(), _infusion_by_rate())
    shifted = convert_bundle(feed, KEY).records[0]
    exact = convert_bundle(feed, KEY, date_shift=False).records[0]
    assert shifted.patient.birth_date != exact.patient.birth_date
    details = [t.detail for t in exact.patient.provenance.transformations]
    assert "dates not shifted (--no-date-shift)" in details  # the record says which was done
    assert any(t.kind == "date-shift" for t in shifted.patient.provenance.transformations)
    # ages (and every interval) are exact either way
    age = lambda r: (r.doses[0].start.date() - r.patient.birth_date).days  # noqa: E731
    assert age(shifted) == age(exact)

    exported = export_bundle(shifted)
    tags = {(t["system"], t["code"]) for e in exported["entry"] for t in e["resource"]["meta"]["tag"]}
    assert ("urn:digphat:interop", "date-shifted") in tags
    back = convert_bundle(copy.deepcopy(exported), KEY).records[0]  # default: shift, but it already was
    assert back.patient.birth_date == shifted.patient.birth_date
    assert back.doses[0].start == shifted.doses[0].start
    assert any("shifted before export" in t.detail for t in back.patient.provenance.transformations)
    # an unshifted record exports untagged, and a default import shifts it then
    plain = export_bundle(exact)
    assert all(len(e["resource"]["meta"]["tag"]) == 1 for e in plain["entry"])
    assert convert_bundle(plain, KEY).records[0].patient.birth_date == shifted.patient.birth_date


def test_provenance_names_sources_by_keyed_token_only(tmp_path: Path):
    named = tmp_path / "Dana_Example_demo-patient-1.json"
    named.write_text(data.FHIR_DEMO_BUNDLE.read_text())
    rec = convert_bundle_file(named, KEY).records[0]
    for item in (rec.patient, *rec.measurements, *rec.doses):
        prov = item.provenance  # type: ignore[attr-defined]  # every item here has provenance
        assert prov.source_system == "fhir" and prov.source_file.startswith("src-")
        assert "Dana" not in prov.model_dump_json() and "demo-patient-1" not in prov.model_dump_json()
    assert rec.patient.provenance.resource_id == rid("Patient", "demo-patient-1")


def test_fhir_xml_is_named_as_such(tmp_path: Path):
    xml = tmp_path / "patient.xml"
    xml.write_text('<?xml version="1.0"?>\n<Patient xmlns="http://hl7.org/fhir"><id value="x"/></Patient>\n')
    res = convert_bundle_file(xml, KEY)
    (issue,) = res.report.issues
    assert issue.reason == "FHIR XML is not supported, convert to JSON" and res.records == ()
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "Observation.xml").write_text("<Observation/>")
    (issue,) = convert_bundle_file(folder, KEY).report.issues  # not silently ignored in a folder either
    assert "FHIR XML is not supported" in issue.reason
