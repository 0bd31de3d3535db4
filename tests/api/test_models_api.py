"""The API end to end: formats in, search, export, validation reports and site records."""

from __future__ import annotations

import io
import json
import zipfile

from interop.schema import MetricValue, ValidationRecord
from tests.api.conftest import Api
from tests.data import ABSORPTION_SBML, BIOMD321_OMEX, GENTAMICIN_ANTIMONY, GENTAMICIN_CARD, GENTAMICIN_SBML


def _post(api: Api, path, who: str = "alice", **data: str):  # type: ignore[no-untyped-def]
    return api.client.post(
        "/models", headers=api.h(who), files={"file": (path.name, path.read_bytes())}, data=data
    )


def test_formats_search_export(api: Api) -> None:
    assert _post(api, BIOMD321_OMEX).json()["format"] == "omex"
    r = _post(api, ABSORPTION_SBML)
    assert r.status_code == 201 and r.json()["card"] is None
    r = _post(api, GENTAMICIN_ANTIMONY, card=GENTAMICIN_CARD.read_text())
    assert r.json()["format"] == "antimony" and {f["role"] for f in r.json()["files"]} == {"model", "source"}
    page = api.client.get("/models", params={"per_page": 2}, headers=api.h("rita")).json()
    assert (page["total"], page["pages"], len(page["items"])) == (3, 2, 2)
    assert [
        i["model_id"]
        for i in api.client.get(
            "/models", params={"annotation": "CHEBI:15765"}, headers=api.h("rita")
        ).json()["items"]
    ] == ["biomd0000000321"]
    omex = api.client.get("/models/gentamicin-1cmt/versions/1/export", headers=api.h("rita"))
    assert omex.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(omex.content)) as z:
        assert {"model.xml", "model-card.json", "metadata.rdf", "manifest.xml"} <= set(z.namelist())
    ld = api.client.get("/models/gentamicin-1cmt/versions/1/export?format=json-ld", headers=api.h("rita"))
    assert "@context" in ld.json()
    sbml = api.client.get("/models/gentamicin-1cmt/versions/1/sbml", headers=api.h("rita"))
    assert sbml.headers["x-sbml-sha256"] == r.json()["sbml_sha256"] and "<sbml" in sbml.text


def test_errors_map_to_statuses(api: Api) -> None:
    assert api.client.get("/models/nope/versions/1", headers=api.h("rita")).status_code == 404
    bad = api.client.post("/models", headers=api.h("alice"), files={"file": ("x.bin", b"\x00\x01")})
    assert bad.status_code == 415
    card = json.loads(GENTAMICIN_CARD.read_text())
    card["drugs"] = []
    r = _post(api, GENTAMICIN_SBML, card=json.dumps(card))
    assert r.status_code == 422 and "drugs" in r.json()["detail"]
    big = api.client.post("/models", headers=api.h("alice"), files={"file": ("big.xml", b" " * 3_000_000)})
    assert big.status_code == 413
    assert (
        api.client.get("/models/gentamicin-1cmt/versions/1/report", headers=api.h("rita")).status_code == 404
    )


def test_validation_report_and_site_records(api: Api) -> None:
    v = _post(api, GENTAMICIN_SBML, card=GENTAMICIN_CARD.read_text()).json()
    rep = api.client.post("/models/gentamicin-1cmt/versions/1/validate", headers=api.h("alice")).json()
    assert rep["passed"] and [s["name"] for s in rep["stages"]][-1] == "reproduce"
    stored = api.client.get("/models/gentamicin-1cmt/versions/1/report", headers=api.h("rita")).json()
    assert stored == rep
    for site, who, value in (("uni-a", "alice", 3.0), ("uni-b", "bob", -5.5)):
        rec = ValidationRecord(
            model_id="gentamicin-1cmt",
            model_version=1,
            model_sha256=v["sbml_sha256"],
            site=site,
            software="digphat-interop 0.1.0",
            dataset_fingerprint="a" * 64,
            n_patients=10,
            n_levels=40,
            metrics=(
                MetricValue(
                    name="mpe_percent", setting="a-priori", observable="gentamicin", value=value, n=40
                ),
            ),
        )
        r = api.client.post(
            "/models/gentamicin-1cmt/versions/1/validation-records",
            headers={**api.h(who), "Content-Type": "application/json"},
            content=rec.model_dump_json(),
        )
        assert r.status_code == 201, r.text
    got = api.client.get(
        "/models/gentamicin-1cmt/versions/1/validation-records", headers=api.h("rita")
    ).json()
    assert [(g["site"], g["metrics"][0]["value"]) for g in got] == [("uni-a", 3.0), ("uni-b", -5.5)]
    wrong = rec.replace(model_sha256="b" * 64)
    r = api.client.post(
        "/models/gentamicin-1cmt/versions/1/validation-records",
        headers={**api.h("bob"), "Content-Type": "application/json"},
        content=wrong.model_dump_json(),
    )
    assert r.status_code == 400 and "model_sha256" in r.json()["detail"]
