"""The converter on the shared real data: Synthea bundles and the FHIR R4 specification examples."""

from __future__ import annotations

import pytest

from converters.fhir import convert_bundle, convert_bundle_file
from interop.schema import ATC, LOINC, RXNORM
from tests import data
from tests.fhir.conftest import KEY, collection, load, pat1, rid, weight_of_pat1


def _issues(report, rtype):
    return [i for i in report.issues if i.resource_type == rtype]


@pytest.mark.parametrize("path", data.FHIR_SYNTHEA_BUNDLES, ids=lambda p: p.name[:20])
def test_synthea_bundle_converts_with_counts_that_add_up(path):
    res = convert_bundle_file(path, KEY)
    rep = res.report
    assert rep.balanced()
    assert len(res.records) == 1
    rec = res.records[0]
    codes = {m.code.code for m in rec.measurements}
    assert {"14682-9", "29463-7", "8302-2"} <= codes  # creatinine (sent as 38483-4), weight, height
    assert "38483-4" not in codes  # one analyte, one code
    for m in rec.measurements:
        assert m.unit in ("umol/L", "kg", "cm", "kg/m2", "mL/min/{1.73_m2}", "g/dL")
        assert m.provenance.resource_type == "Observation"
    # Synthea's MedicationRequests carry no dose: each is reported, none dropped silently
    mr = _issues(rep, "MedicationRequest")
    assert rep.read["MedicationRequest"] == rep.count("rejected", "MedicationRequest") > 0
    assert 0 < len(mr) <= 5  # a few examples per reason are kept, every one is counted
    assert all(i.resource_id and i.source == str(path) and i.line for i in mr)
    assert rep.unmapped_codes  # panels and codes not in the table are counted
    assert rep.read["Claim"] == rep.count("skipped", "Claim")
    assert rec.conditions and all(c.code.system for c in rec.conditions)


def _medadmin_feed(*numbers: str, weight: bool = True):
    res = [pat1()] + ([weight_of_pat1()] if weight else [])
    res += [load(data.FHIR_MEDADMIN[n]) for n in numbers]
    return convert_bundle(collection(*res), KEY, source="r4-examples")


def test_entered_in_error_is_excluded_and_reported():
    out = _medadmin_feed("0303")
    issue = _issues(out.report, "MedicationAdministration")[0]
    assert issue.outcome == "skipped" and "entered-in-error" in issue.reason
    assert issue.resource_id == rid("MedicationAdministration", "medadmin0303") and issue.field == "status"
    assert out.records[0].doses == ()
    assert out.report.balanced()


def test_per_kg_dose_uses_the_weight_at_that_time():
    out = _medadmin_feed("0305")
    (dose,) = out.records[0].doses
    kg = 185 * 0.45359237  # the example weight is 185 [lb_av]
    assert dose.amount == pytest.approx(1.8 * kg)
    assert dose.unit == "mg" and dose.original_amount == 1.8 and dose.original_unit == "mg/kg"
    assert dose.route == "iv-infusion" and dose.duration_h == pytest.approx(10.0)
    assert any("body weight" in t.detail for t in dose.provenance.transformations)


def test_per_kg_dose_without_a_weight_near_in_time_is_reported():
    far = weight_of_pat1("2016-03-28")
    res = [pat1(), far, load(data.FHIR_MEDADMIN["0305"])]
    out = convert_bundle(collection(*res), KEY)
    issue = _issues(out.report, "MedicationAdministration")[0]
    assert issue.outcome == "rejected" and "no body weight within 30 days" in issue.reason
    assert out.report.balanced()


def test_tablets_without_strength_are_reported_not_guessed():
    out = _medadmin_feed("0306")
    issue = _issues(out.report, "MedicationAdministration")[0]
    assert issue.outcome == "rejected" and "'TAB'" in issue.reason and "strength" in issue.reason


def test_tablets_with_an_ingredient_strength_resolve_to_mg():
    ma = load(data.FHIR_MEDADMIN["0306"])
    ma["contained"][0]["ingredient"] = [
        {
            "itemCodeableConcept": ma["contained"][0]["code"],
            "strength": {
                "numerator": {"value": 250, "system": "http://unitsofmeasure.org", "code": "mg"},
                "denominator": {"value": 1, "code": "TAB"},
            },
        }
    ]
    out = convert_bundle(collection(pat1(), ma), KEY)
    (dose,) = out.records[0].doses
    assert (dose.amount, dose.unit, dose.route) == (500.0, "mg", "oral")
    assert {c.system for c in dose.drug.codes} == {RXNORM, ATC}  # SNOMED product mapped to azithromycin


def test_ndc_product_maps_to_rxnorm_and_atc_and_in_progress_is_flagged():
    out = _medadmin_feed("0301")
    (dose,) = out.records[0].doses
    assert dose.drug.name == "vancomycin"
    assert [c.code for c in dose.drug.codes] == ["11124", "J01XA01"]
    assert dose.amount == 500 and dose.route == "iv-bolus"
    assert out.report.flags["in-progress administration"] == 1


def test_volume_dose_resolved_by_strength_per_ml():
    ma = load(data.FHIR_MEDADMIN["0307"])  # lorazepam 2 mg/mL solution
    ma["dosage"]["dose"] = {"value": 3.5, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
    out = convert_bundle(collection(pat1(), ma), KEY)
    (dose,) = out.records[0].doses
    assert (dose.amount, dose.unit, dose.original_unit) == (7.0, "mg", "mL")
    assert dose.drug.name == "lorazepam"


def test_weight_in_pounds_and_height_in_inches_become_kg_and_cm():
    h = load(data.FHIR_HEIGHT_IN)
    h["subject"] = {"reference": "Patient/pat1"}
    out = convert_bundle(collection(pat1(), weight_of_pat1(), h), KEY)
    ms = {m.code.code: m for m in out.records[0].measurements}
    assert ms["29463-7"].value == pytest.approx(83.9145884)
    assert ms["29463-7"].original_unit == "[lb_av]"
    assert ms["8302-2"].value == pytest.approx(66.9 * 2.54)
    assert ms["8302-2"].code.system == LOINC
    assert out.report.unit_conversions["[lb_av] -> kg"] == 1


def test_whole_example_folder_reports_missing_patients_by_reference():
    out = convert_bundle_file(data.FHIR_R4_SPEC, KEY)
    rep = out.report
    assert rep.balanced()
    missing = [i for i in rep.issues if "no such Patient" in i.reason]
    assert missing and all(i.source and i.resource_id for i in missing)
    genomic = [i for i in rep.issues if "genomics converter" in i.reason]
    assert genomic and genomic[0].outcome == "skipped"


def test_searchset_with_included_medication_resolves_the_reference():
    b = load(data.FHIR_SEARCHSET)
    b["entry"][1]["resource"]["code"] = {"coding": [{"system": RXNORM, "code": "11124"}]}
    b["entry"][0]["resource"]["status"] = "active"
    b["entry"][0]["resource"]["dosageInstruction"] = [
        {
            "doseAndRate": [
                {
                    "doseQuantity": {
                        "value": 1,
                        "unit": "g",
                        "system": "http://unitsofmeasure.org",
                        "code": "g",
                    }
                }
            ]
        }
    ]
    b["entry"][0]["resource"]["authoredOn"] = "2014-08-18"
    b["entry"].append(
        {
            "fullUrl": "https://example.com/base/Patient/347",
            "resource": {"resourceType": "Patient", "id": "347"},
        }
    )
    out = convert_bundle(b, KEY)
    (dose,) = out.records[0].doses
    assert dose.status == "ordered" and dose.amount == 1000 and dose.drug.name == "vancomycin"
