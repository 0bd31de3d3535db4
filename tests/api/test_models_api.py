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


def test_site_records_with_their_images(api: Api) -> None:
    from tests.registry.test_site_images import png

    v = _post(api, GENTAMICIN_SBML, card=GENTAMICIN_CARD.read_text()).json()
    base = "/models/gentamicin-1cmt/versions/1/validation-records"

    def rec(site: str) -> ValidationRecord:
        return ValidationRecord(
            model_id="gentamicin-1cmt",
            model_version=1,
            model_sha256=v["sbml_sha256"],
            site=site,
            software="t 1",
            dataset_fingerprint="a" * 64,
            n_patients=3,
            n_levels=9,
        )

    # An old-style record (JSON, no image) and one with images (multipart).
    r = api.client.post(
        base,
        headers={**api.h("bob"), "Content-Type": "application/json"},
        content=rec("uni-b").model_dump_json(),
    )
    assert r.status_code == 201, r.text
    vpc, qq = png("VPC"), png("NPDE QQ")
    r = api.client.post(
        f"{base}/with-images",
        headers=api.h("alice"),
        data={"record": rec("uni-a").model_dump_json(), "titles": ["VPC and pcVPC (g)", "NPDE QQ plot (g)"]},
        files=[("images", ("vpc.png", vpc, "image/png")), ("images", ("qq.png", qq, "image/png"))],
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["images"] == 2
    listed = api.client.get(f"{base}/with-images", headers=api.h("rita")).json()
    assert [(x["record"]["site"], len(x["images"])) for x in listed] == [("uni-b", 0), ("uni-a", 2)]
    assert [i["title"] for i in listed[1]["images"]] == ["VPC and pcVPC (g)", "NPDE QQ plot (g)"]
    got = api.client.get(listed[1]["images"][1]["url"], headers=api.h("rita"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/png" and got.content == qq
    assert api.client.get(f"{base}/{rid}/images/2", headers=api.h("rita")).status_code == 404
    assert api.client.get(f"{base}/{listed[0]['id']}/images/0", headers=api.h("rita")).status_code == 404
    assert api.client.get(f"{base}/{rid}/images/0", headers=api.h(None)).status_code == 401
    # The plain list still holds bare records.
    assert [g["site"] for g in api.client.get(base, headers=api.h("rita")).json()] == ["uni-b", "uni-a"]

    def send(site: str, titles: list[str], images: list[bytes], who: str = "alice") -> object:
        return api.client.post(
            f"{base}/with-images",
            headers=api.h(who),
            data={"record": rec(site).model_dump_json(), "titles": titles},
            files=[("images", (f"{k}.png", b, "image/png")) for k, b in enumerate(images)],
        )

    bad = send("uni-a", ["VPC"], [b"GIF89a not a png"])
    assert bad.status_code == 400 and "PNG signature" in bad.json()["detail"]  # type: ignore[attr-defined]
    assert send("uni-a", ["VPC", "NPDE"], [vpc]).status_code == 422  # type: ignore[attr-defined]
    assert send("uni-a", ["VPC"], [vpc + b"\x00" * 2_100_000]).status_code == 413  # type: ignore[attr-defined]
    assert send("uni-b", ["VPC"], [vpc]).status_code == 403  # type: ignore[attr-defined]  # another site
    assert len(api.client.get(f"{base}/with-images", headers=api.h("rita")).json()) == 2
