"""The twin router in a real small FastAPI app (TestClient), with a header-token reader dependency."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from converters.nonmem import read_event_table
from interop.api.twin import make_router
from interop.errors import NotFoundError
from interop.schema import ModelCard, parse_json
from interop.workflows.twin import event_table_mapping
from tests.data import mapbayr_card, mapbayr_data, mapbayr_phi, mapbayr_sbml

TOKEN = "reader-token"


def load(model_id: str, version: int | None) -> tuple[str, ModelCard]:
    """Stands in for the registry (built by another part): the bundled example models by id."""
    number = model_id.removeprefix("mapbayr-")
    if not model_id.startswith("mapbayr-") or not mapbayr_sbml(number).exists() or version not in (None, 1):
        raise NotFoundError(f"no model version {model_id}@{version}")
    return mapbayr_sbml(number).read_text(), parse_json(ModelCard, mapbayr_card(number).read_text())


def reader(authorization: str = Header(default="")) -> None:
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, detail="reader token required")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(make_router(load, reader))
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


@pytest.fixture(scope="module")
def patient() -> dict[str, object]:
    card = parse_json(ModelCard, mapbayr_card("401").read_text())
    record = read_event_table(
        mapbayr_data("401"), event_table_mapping(card), ignore=("s2_sampling",)
    ).records[0]
    return json.loads(record.model_dump_json())


def test_fit_matches_nonmem(client: TestClient, patient: dict[str, object]) -> None:
    r = client.post("/twin/fit", json={"model": "mapbayr-401", "patient": patient, "starts": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    phi = mapbayr_phi("401").read_text().splitlines()[2].split()
    etas = [float(x) for x in phi[2:7]]
    assert list(body["fit"]["etas"].values()) == pytest.approx(etas, abs=1e-3)
    assert body["fit"]["ofv"] == pytest.approx(float(phi[-1]), abs=0.01)
    assert {o["observable"] for o in body["fit"]["observations"]} == {"parent", "metabolite"}


def test_forecast_and_recommend_with_fhir(client: TestClient, patient: dict[str, object]) -> None:
    r = client.post(
        "/twin/forecast",
        json={
            "model": "mapbayr-401",
            "version": 1,
            "patient": patient,
            "starts": 1,
            "points": 50,
            "n_draws": 50,
            "fhir": True,
        },
    )
    assert r.status_code == 200, r.text
    fc = r.json()["forecast"]
    assert len(fc["times_h"]) == 50 and set(fc["upper"]) == {"parent", "metabolite"}
    assert r.json()["fhir"]["type"] == "collection"
    r = client.post(
        "/twin/recommend",
        json={
            "model": "mapbayr-401",
            "patient": patient,
            "starts": 1,
            "n_draws": 30,
            "fhir": True,
            "target": {"kind": "auc", "low": 1000, "high": 2500},
            "regimen": {"amounts": [5000, 10000, 20000], "intervals_h": [24], "n_doses": 4},
        },
    )
    assert r.status_code == 200, r.text
    rec = r.json()["recommendation"]
    assert 1000 <= rec["best"]["exposure"] <= 2500 or rec["best"]["probability"] == max(
        c["probability"] for c in rec["candidates"]
    )
    assert r.json()["fhir"]["entry"][0]["resource"]["resourceType"] == "MedicationRequest"
    r = client.post(  # two targets, the second one-sided; continued therapy in a forecast
        "/twin/recommend",
        json={
            "model": "mapbayr-401",
            "patient": patient,
            "starts": 1,
            "n_draws": 30,
            "target": {"kind": "auc", "low": 1000, "high": 2500},
            "also": [{"kind": "trough", "high": 40}],
            "regimen": {"amounts": [5000, 10000], "intervals_h": [24], "n_doses": 4, "hold": True},
        },
    )
    assert r.status_code == 200, r.text
    rec = r.json()["recommendation"]
    assert [t["kind"] for t in rec["targets"]] == ["auc", "trough"] and rec["targets"][1]["low"] == 0
    assert rec["best"]["probability"] <= min(e["probability"] for e in rec["best"]["exposures"])
    r = client.post(
        "/twin/forecast",
        json={
            "model": "mapbayr-401",
            "patient": patient,
            "starts": 1,
            "points": 20,
            "n_draws": 20,
            "until_h": 400,
            "continue_regimen": True,
        },
    )
    assert r.status_code == 200, r.text
    assert any(n.startswith("continued therapy assumed") for n in r.json()["notes"])


def test_errors(client: TestClient, patient: dict[str, object]) -> None:
    assert (
        client.post(
            "/twin/fit",
            json={"model": "mapbayr-401", "patient": patient},
            headers={"Authorization": "Bearer nope"},
        ).status_code
        == 401
    )
    assert client.post("/twin/fit", json={"model": "mapbayr-999", "patient": patient}).status_code == 404
    r = client.post(
        "/twin/recommend",
        json={
            "model": "mapbayr-401",
            "patient": patient,
            "target": {"kind": "trough", "low": 5, "high": 1},
            "regimen": {"amounts": [100], "intervals_h": [24]},
        },
    )
    assert r.status_code == 422 and "low < high" in r.text
    no_doses = {**patient, "doses": []}
    r = client.post("/twin/fit", json={"model": "mapbayr-401", "patient": no_doses})
    assert r.status_code == 422 and "no administered dose" in r.json()["detail"]
    assert client.post("/twin/fit", json={"model": "mapbayr-401"}).status_code == 422
