"""Bulk NDJSON exports, gzip, manifests (error/deleted), bad lines, versions, references, dates."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from converters.fhir import convert_bundle, convert_bundle_file, normalise_version
from converters.fhir.versions import detect_version
from interop.errors import ConversionError
from interop.settings import Settings
from interop.workflows.synth import load_synth_model, write_synthetic_feed
from tests.fhir.conftest import KEY, collection, pat1, rid, weight_of_pat1


@pytest.fixture(scope="module")
def ndjson_feed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("feed")
    sbml, card, label = load_synth_model(Settings(home=out, database_url="sqlite://"), None)
    write_synthetic_feed(out, 6, sbml=sbml, card=card, label=label, fmt="ndjson", days=3, seed=7)
    return out


def test_bulk_folder_converts_every_resource(ndjson_feed):
    res = convert_bundle_file(ndjson_feed, KEY)
    rep = res.report
    assert rep.balanced() and rep.totals()["rejected"] == 0 and rep.totals()["skipped"] == 0
    assert len(res.records) == 6
    for rec in res.records:
        levels = rec.drug_levels()
        assert levels and all(m.drug_level.analyte.code == "1596450" for m in levels)
        statuses = {d.status for d in rec.doses}
        assert statuses == {"administered", "ordered"}  # orders kept apart from administrations
        assert any(d.original_unit == "TAB" and d.amount == 500 for d in rec.doses)
        # a level's time is its Specimen's collection time (the Observation is 5 min later)
        assert any(t.detail.startswith("time: Specimen") for t in levels[0].provenance.transformations)


def test_manifest_error_and_deleted_entries_are_honoured(ndjson_feed, tmp_path):
    for f in ndjson_feed.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    first_obs = json.loads((tmp_path / "Observation.ndjson").read_text().splitlines()[0])
    (tmp_path / "deleted.ndjson").write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "DELETE", "url": f"Observation/{first_obs['id']}"}}],
            }
        )
        + "\n"
    )
    (tmp_path / "errors.ndjson").write_text(
        json.dumps(
            {
                "resourceType": "OperationOutcome",
                "issue": [
                    {"severity": "error", "code": "processing", "diagnostics": "Unable to read Condition 17"}
                ],
            }
        )
        + "\n"
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["deleted"] = [{"type": "Bundle", "url": "deleted.ndjson"}]
    manifest["error"] = [{"type": "OperationOutcome", "url": "errors.ndjson"}]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    rep = convert_bundle_file(tmp_path / "manifest.json", KEY).report
    assert rep.balanced()
    reasons = [i.reason for i in rep.issues]
    assert any("Unable to read Condition 17" in r for r in reasons)
    assert sum("deleted" in r for r in reasons) == 2  # the deletion entry, and the resource it names
    assert rep.read["Observation"] == rep.converted["Observation"] + 2


def test_gzip_and_bad_lines_are_reported_by_line_and_the_rest_converts(ndjson_feed, tmp_path):
    lines = (ndjson_feed / "Observation.ndjson").read_text().splitlines()
    weight = next(json.loads(ln) for ln in lines if '"29463-7"' in ln)
    heavy = dict(
        weight,
        id="too-heavy",
        valueQuantity={"value": 7000, "unit": "kg", "code": "kg", "system": "http://unitsofmeasure.org"},
    )
    future = dict(weight, id="future", effectiveDateTime="2999-01-01T00:00:00+00:00")
    orphan = dict(weight, id="orphan", subject={"reference": "Patient/nobody"})
    bad = [
        "{not json",
        json.dumps({"resourceType": "Observation", "id": "no-status"}),
        json.dumps({"resourceType": "Nonsense", "id": "x"}),
        json.dumps(heavy),
        json.dumps(future),
        json.dumps(orphan),
        "[1, 2]",
    ]
    feed = tmp_path / "feed"
    feed.mkdir()
    for f in ndjson_feed.iterdir():
        if f.suffix == ".ndjson":
            data = f.read_bytes()
            if f.name == "Observation.ndjson":
                data += ("\n".join(bad) + "\n").encode()
            (feed / (f.name + ".gz")).write_bytes(gzip.compress(data))
    manifest = json.loads((ndjson_feed / "manifest.json").read_text())
    manifest["output"] = [dict(o, url=o["url"] + ".gz") for o in manifest["output"]]
    (feed / "manifest.json").write_text(json.dumps(manifest))
    res = convert_bundle_file(feed, KEY)
    rep = res.report
    assert rep.balanced()
    n = len(lines)
    by_line = {i.line: i for i in rep.issues if i.source and i.source.endswith("Observation.ndjson.gz")}
    assert "invalid JSON" in by_line[n + 1].reason
    assert (
        by_line[n + 2].resource_id == rid("Observation", "no-status")
        and "Field required" in by_line[n + 2].reason
    )
    assert "unknown resourceType" in by_line[n + 3].reason
    assert "impossible value 7000 kg" in by_line[n + 4].reason
    assert "after the export" in by_line[n + 5].reason
    assert "no such Patient" in by_line[n + 6].reason and by_line[n + 6].resource_id == rid(
        "Observation", "orphan"
    )
    assert "JSON object" in by_line[n + 7].reason
    assert rep.converted["Observation"] == n


def test_unordered_bundle_resolves_urn_uuid_and_conditional_references(key):
    p = pat1()
    obs = weight_of_pat1()
    obs["subject"] = {"reference": "Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|12345"}
    obs2 = dict(
        weight_of_pat1("2015-01-16T04:00:00+01:00"),
        id="w2",
        subject={"reference": "urn:uuid:0b1c7a2e-1111-4c3b-9a55-2d7c6a1e0b01"},
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:aaaaaaaa-1111-4c3b-9a55-2d7c6a1e0b01",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": "urn:uuid:bbbbbbbb-1111-4c3b-9a55-2d7c6a1e0b01",
                "resource": obs2,
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": "urn:uuid:0b1c7a2e-1111-4c3b-9a55-2d7c6a1e0b01",
                "resource": p,
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    res = convert_bundle(bundle, key)
    assert res.report.balanced() and res.report.converted["Observation"] == 2
    assert len(res.records[0].measurements) == 2


def _r5_admin() -> dict:
    return {
        "resourceType": "MedicationAdministration",
        "id": "r5",
        "status": "completed",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/MedicationAdministration|5.0.0"]},
        "medication": {
            "concept": {
                "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "11124"}]
            }
        },
        "subject": {"reference": "Patient/pat1"},
        "occurenceDateTime": "2015-01-15T10:00:00+01:00",
        "dosage": {"dose": {"value": 1, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}},
    }


def test_r5_resources_are_detected_and_converted(key):
    assert detect_version(_r5_admin()) == "R5"
    res = convert_bundle(collection(pat1(), _r5_admin()), key)
    (dose,) = res.records[0].doses
    assert dose.amount == 1000 and dose.drug.name == "vancomycin"


def test_trial_order_falls_back_to_r5_and_a_forced_version_is_used(key):
    admin = _r5_admin()
    del admin["meta"]
    res = convert_bundle(collection(pat1(), admin), key)  # R4B rejects it, R5 accepts it
    assert len(res.records[0].doses) == 1
    forced = convert_bundle(collection(pat1(), admin), key, version="R4")
    assert forced.records[0].doses == ()
    assert "medication" in forced.report.issues[0].reason
    assert normalise_version("4.0.1") == "R4" and normalise_version("r5") == "R5"
    with pytest.raises(ConversionError):
        normalise_version("DSTU2")


def test_preliminary_kept_and_flagged_cancelled_excluded(key):
    prelim = dict(weight_of_pat1(), id="p", status="preliminary")
    cancelled = dict(weight_of_pat1(), id="c", status="cancelled")
    res = convert_bundle(collection(pat1(), prelim, cancelled), key)
    (m,) = res.records[0].measurements
    assert m.status == "preliminary" and res.report.flags["preliminary"] == 1
    assert res.report.count("skipped", "Observation") == 1


def test_site_table_adds_a_local_code_without_code_changes(tmp_path):
    table = tmp_path / "site.csv"
    table.write_text(
        "# version: site-1\ncode,display,category,unit,kind,analyte_system,analyte_code,"
        "analyte_display,matrix,molar_mass,min,max\n"
        "99999-9,Local gentamicin trough,drug-level,mg/L,drug,"
        "http://www.nlm.nih.gov/research/umls/rxnorm,1596450,gentamicin,plasma,,0,100\n"
    )
    obs = dict(
        weight_of_pat1(),
        id="lvl",
        code={"coding": [{"system": "http://loinc.org", "code": "99999-9"}]},
        valueQuantity={"value": 2, "unit": "ug/mL", "system": "http://unitsofmeasure.org", "code": "ug/mL"},
    )
    path = tmp_path / "b.json"
    path.write_text(json.dumps(collection(pat1(), obs)))
    assert convert_bundle_file(path, KEY).records[0].measurements == ()
    res = convert_bundle_file(path, KEY, extra_tables=(table,))
    (m,) = res.records[0].measurements
    assert (m.category, m.value, m.unit) == ("drug-level", 2.0, "mg/L")
    assert "site.csv@site-1" in res.report.versions


def test_creatinine_under_two_codes_is_one_analyte_in_umol_per_litre(key):
    mol = dict(
        weight_of_pat1(),
        id="c1",
        code={"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        valueQuantity={
            "value": 88.4,
            "unit": "umol/L",
            "system": "http://unitsofmeasure.org",
            "code": "umol/L",
        },
    )
    mass = dict(
        weight_of_pat1(),
        id="c2",
        code={"coding": [{"system": "http://loinc.org", "code": "14682-9"}]},
        valueQuantity={"value": 1.0, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    )
    res = convert_bundle(collection(pat1(), mol, mass), key)
    ms = {m.id: m for m in res.records[0].measurements}
    one, two = ms[rid("Observation", "c1")], ms[rid("Observation", "c2")]
    # 2160-0 sent in umol/L (kept as is) and 14682-9 sent in mg/dL (x 88.4017 by 113.12 g/mol):
    # both are creatinine 14682-9 in umol/L, the as-received value and unit kept beside
    assert one.code.code == two.code.code == "14682-9" and one.unit == two.unit == "umol/L"
    assert one.value == pytest.approx(88.4) and two.value == pytest.approx(88.4017, rel=1e-4)
    assert (one.original_value, one.original_unit) == (88.4, "umol/L")
    assert (two.original_value, two.original_unit) == (1.0, "mg/dL")
    assert any("2160-0 -> 14682-9" in t.detail for t in one.provenance.transformations)


def test_missing_file_is_a_typed_error(tmp_path):
    with pytest.raises(ConversionError) as err:
        convert_bundle_file(tmp_path / "nope.json", KEY)
    assert "nope.json" in str(err.value)


def test_a_date_in_the_future_is_impossible_without_a_manifest_too(key):
    future = dict(weight_of_pat1("2999-01-01T00:00:00Z"), id="f")
    res = convert_bundle(collection(pat1(), future), key)
    (issue,) = res.report.issues
    assert "after the export" in issue.reason and issue.resource_id == rid("Observation", "f")


@pytest.mark.parametrize("btype", ["batch", "history", "document", "searchset", "transaction", "collection"])
def test_every_bundle_type_converts_and_entries_without_resource_are_reported(key, btype):
    bundle = collection(pat1(), weight_of_pat1())
    bundle["type"] = btype
    bundle["entry"].append({"request": {"method": "DELETE", "url": "Observation/old"}})
    res = convert_bundle(bundle, key)
    assert len(res.records[0].measurements) == 1
    (issue,) = res.report.issues
    assert issue.outcome == "skipped" and "DELETE Observation" in issue.reason and "old" not in issue.reason
    assert res.report.balanced()


def test_synth_takes_a_registered_model_by_id_and_version(tmp_path):
    from registry import open_registry
    from tests import data

    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'r.sqlite'}")
    sbml, card, _ = load_synth_model(settings, None)
    reg = open_registry(settings.database_url, settings.blob_dir)
    try:
        stored = reg.submit(data.GENTAMICIN_SBML.read_text(), card, submitted_by="test")
    finally:
        reg.close()
    sbml2, card2, label = load_synth_model(settings, f"{stored.model_id}@{stored.version}")
    assert label == f"{stored.model_id}@{stored.version}" and card2.id == card.id and sbml2
    res = write_synthetic_feed(tmp_path / "b", 2, sbml=sbml2, card=card2, label=label, fmt="bundle", days=2)
    assert res.patients == 2 and len(res.files) == 2
    conv = convert_bundle_file(tmp_path / "b", KEY)
    assert conv.report.balanced() and all(r.drug_levels() for r in conv.records)


def test_infusion_rate_in_mass_per_time_gives_an_infusion_with_rate(key):
    from tests import data
    from tests.fhir.conftest import load

    ma = load(data.FHIR_MEDADMIN["0301"])  # vancomycin 500 mg IV, start only
    ma["status"] = "completed"
    ma["dosage"]["rateQuantity"] = {
        "value": 250,
        "unit": "mg/h",
        "system": "http://unitsofmeasure.org",
        "code": "mg/h",
    }
    (dose,) = convert_bundle(collection(pat1(), ma), key).records[0].doses
    assert (dose.route, dose.rate, dose.duration_h, dose.infusion_hours) == ("iv-infusion", 250.0, 2.0, 2.0)
