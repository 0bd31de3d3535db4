"""ML models through the HTTP API: submit the archive, validate, read the card, search."""

from __future__ import annotations

from tests.api.conftest import Api, api  # noqa: F401  (the app over a fresh registry, users)
from tests.ml.conftest import SAMPLE_ARCHIVE


def test_submit_validate_and_search_over_http(api: Api) -> None:  # noqa: F811
    files = {"file": ("toy-cl.zip", SAMPLE_ARCHIVE.read_bytes(), "application/zip")}
    r = api.client.post("/models", files=files, headers=api.h("alice"))
    assert r.status_code == 201, r.text
    detail = r.json()
    assert detail["format"] == "onnx" and detail["card"]["predicts"]["name"] == "CL"
    r = api.client.post(f"/models/{detail['model_id']}/versions/1/validate", headers=api.h("alice"))
    assert r.status_code == 200, r.text
    assert [s["name"] for s in r.json()["stages"]] == ["onnx", "card", "run", "reproduce"]
    assert all(s["status"] == "passed" for s in r.json()["stages"])
    hits = api.client.get("/models", params={"predicts": "CL", "feature": "2164-2"}, headers=api.h("rita"))
    assert [i["model_id"] for i in hits.json()["items"]] == ["toy-cl"]
    none = api.client.get("/models", params={"feature": "CYP2D6"}, headers=api.h("rita"))
    assert none.json()["total"] == 0
