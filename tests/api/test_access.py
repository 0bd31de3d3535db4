"""Roles, tokens and institution ownership, for EVERY endpoint of the API: anonymous callers
get 401 everywhere, too-low roles 403, another institution's contributor 403, the right role
succeeds, and every successful write lands in the audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from interop.schema import MetricValue, ValidationRecord
from tests.api.conftest import Api
from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML

M = "gentamicin-1cmt"
V = f"/models/{M}/versions/1"


def _submit_kwargs(api: Api, title: str = "x") -> dict[str, Any]:
    card = json.loads(GENTAMICIN_CARD.read_text())
    card["title"] = title
    return {"files": {"file": ("g.xml", GENTAMICIN_SBML.read_bytes())}, "data": {"card": json.dumps(card)}}


def _record(api: Api, site: str) -> dict[str, Any]:
    sha = api.client.get(V, headers=api.h("carol")).json()["sbml_sha256"]
    rec = ValidationRecord(
        model_id=M,
        model_version=1,
        model_sha256=sha,
        site=site,
        software="t 1",
        dataset_fingerprint="0" * 64,
        n_patients=3,
        n_levels=9,
        metrics=(
            MetricValue(name="mpe_percent", setting="a-priori", observable="gentamicin", value=4.2, n=9),
        ),
    )
    return {"content": rec.model_dump_json(), "headers_extra": {"Content-Type": "application/json"}}


def _record_with_image(api: Api, site: str) -> dict[str, Any]:
    from tests.registry.test_site_images import png

    rec = _record(api, site)["content"]
    return {
        "data": {"record": rec, "titles": ["VPC and pcVPC (gentamicin)"]},
        "files": [("images", ("vpc.png", png("VPC"), "image/png"))],
    }


def _twin(kind: str) -> Callable[[Api, str], dict[str, Any]]:
    """A twin request for the demo patient on the seeded model (readers may run twins)."""
    from converters import convert_bundle_file
    from tests.data import FHIR_DEMO_BUNDLE

    def body(api: Api, who: str) -> dict[str, Any]:
        record = convert_bundle_file(FHIR_DEMO_BUNDLE, b"access-test-key-0123").records[0]
        payload: dict[str, Any] = {
            "model": M,
            "version": 1,
            "starts": 1,
            "patient": json.loads(record.model_dump_json()),
        }
        if kind == "forecast":
            payload |= {"n_draws": 20, "points": 20}
        if kind == "recommend":
            payload |= {
                "n_draws": 20,
                "target": {"kind": "trough", "low": 0.2, "high": 1.0},
                "regimen": {
                    "amounts": [240, 320],
                    "intervals_h": [24],
                    "durations_h": [0.5],
                    "route": "iv-infusion",
                    "n_doses": 3,
                },
            }
        return {"json": payload}

    return body


@dataclass
class Endpoint:
    method: str
    path: str  # route path template as FastAPI lists it
    url: str
    role: str  # the lowest role allowed
    write: bool
    body: Callable[[Api, str], dict[str, Any]] | None = None
    other_institution: str | None = None  # a contributor who must be refused for ownership
    ok: int = 200


ENDPOINTS = [
    Endpoint("GET", "/models", "/models?drug=gentamicin", "reader", False),
    Endpoint(
        "POST",
        "/models",
        "/models",
        "contributor",
        True,
        lambda a, who: _submit_kwargs(a, f"by {who}"),
        other_institution="bob",
        ok=201,
    ),
    Endpoint("GET", "/models/{model_id}", f"/models/{M}", "reader", False),
    Endpoint("GET", "/models/{model_id}/versions/{version}", V, "reader", False),
    Endpoint("GET", "/models/{model_id}/versions/{version}/sbml", f"{V}/sbml", "reader", False),
    Endpoint("GET", "/models/{model_id}/versions/{version}/report", f"{V}/report", "reader", False),
    Endpoint(
        "POST",
        "/models/{model_id}/versions/{version}/validate",
        f"{V}/validate",
        "contributor",
        True,
        other_institution="bob",
    ),
    Endpoint("POST", "/models/{model_id}/versions/{version}/publish", f"{V}/publish", "curator", True),
    Endpoint("POST", "/models/{model_id}/versions/{version}/deprecate", f"{V}/deprecate", "curator", True),
    Endpoint(
        "GET", "/models/{model_id}/versions/{version}/export", f"{V}/export?format=turtle", "reader", False
    ),
    Endpoint(
        "POST",
        "/models/{model_id}/versions/{version}/validation-records",
        f"{V}/validation-records",
        "contributor",
        True,
        lambda a, who: _record(a, {"alice": "uni-a", "carol": "hub"}.get(who, "uni-a")),
        other_institution="bob",
        ok=201,
    ),
    Endpoint(
        "GET",
        "/models/{model_id}/versions/{version}/validation-records",
        f"{V}/validation-records",
        "reader",
        False,
    ),
    Endpoint(
        "POST",
        "/models/{model_id}/versions/{version}/validation-records/with-images",
        f"{V}/validation-records/with-images",
        "contributor",
        True,
        lambda a, who: _record_with_image(a, {"alice": "uni-a", "carol": "hub"}.get(who, "uni-a")),
        other_institution="bob",
        ok=201,
    ),
    Endpoint(
        "GET",
        "/models/{model_id}/versions/{version}/validation-records/with-images",
        f"{V}/validation-records/with-images",
        "reader",
        False,
    ),
    Endpoint(
        "GET",
        "/models/{model_id}/versions/{version}/validation-records/{record_id}/images/{position}",
        f"{V}/validation-records/1/images/0",
        "reader",
        False,
    ),
    Endpoint(
        "POST", "/models/{model_id}/versions/{version}/withdraw", f"{V}/withdraw", "curator", True, ok=204
    ),
    Endpoint("GET", "/users", "/users", "curator", False),
    Endpoint(
        "POST",
        "/users",
        "/users",
        "curator",
        True,
        lambda a, who: {"json": {"name": "zed", "institution": "uni-z", "role": "reader"}},
        ok=201,
    ),
    Endpoint("POST", "/users/{name}/revoke", "/users/bob/revoke", "curator", True),
    Endpoint("POST", "/users/{name}/deactivate", "/users/bob/deactivate", "curator", True, ok=204),
    Endpoint("GET", "/models/{model_id}/audit", f"/models/{M}/audit", "reader", False),
    Endpoint("GET", "/audit", "/audit", "curator", False),
    Endpoint(
        "GET",
        "/sparql",
        "/sparql?query=SELECT%20%3Fs%20WHERE%20%7B%20%3Fs%20%3Fp%20%3Fo%20%7D%20LIMIT%201",
        "reader",
        False,
    ),
]
ENDPOINTS += [
    Endpoint("POST", f"/twin/{kind}", f"/twin/{kind}", "reader", False, _twin(kind))
    for kind in ("fit", "forecast", "recommend")
]
WHO_FOR_ROLE = {"reader": "rita", "contributor": "alice", "curator": "carol"}
BELOW = {"reader": [], "contributor": ["rita"], "curator": ["rita", "alice"]}


def _call(api: Api, ep: Endpoint, who: str | None) -> Any:
    kwargs = ep.body(api, who or "anon") if ep.body else {}
    headers = {**api.h(who), **kwargs.pop("headers_extra", {})}
    return api.client.request(ep.method, ep.url, headers=headers, **kwargs)


def _seed(api: Api) -> None:
    r = api.client.post("/models", headers=api.h("alice"), **_submit_kwargs(api, "seed"))  # type: ignore[arg-type]
    assert r.status_code == 201, r.text
    assert api.client.post(f"{V}/validate", headers=api.h("alice")).json()["passed"]
    # A site record with an image (record 1, image 0: the image route's URL).
    r = api.client.post(
        f"{V}/validation-records/with-images", headers=api.h("carol"), **_record_with_image(api, "hub")
    )
    assert r.status_code == 201 and r.json()["id"] == 1, r.text


def _audit(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = api.client.get("/audit", headers=api.h("carol"), params={"per_page": 1000, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def _actions(api: Api) -> list[dict[str, Any]]:
    """Audit entries of actions (not of refused requests)."""
    return [a for a in _audit(api) if a["action"] != "denied"]


def test_every_route_is_in_the_matrix(api: Api) -> None:
    # From the OpenAPI document: every published operation.
    paths = api.client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert routes == {(e.method, e.path) for e in ENDPOINTS}


@pytest.mark.parametrize("ep", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_endpoint_access(api: Api, ep: Endpoint) -> None:
    _seed(api)
    audit_before = _actions(api)
    # Anonymous and bad tokens: 401 everywhere.
    assert _call(api, ep, None).status_code == 401
    bad = api.client.request(ep.method, ep.url, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    # Roles below the required one: 403.
    for who in BELOW[ep.role]:
        assert _call(api, ep, who).status_code == 403, who
    # Another institution's contributor cannot change uni-a's model.
    if ep.other_institution:
        assert _call(api, ep, ep.other_institution).status_code == 403
    audit_mid = _actions(api)
    assert audit_mid == audit_before, "refused calls change nothing (they are only audited as denials)"
    denials = _audit(api, action="denied")
    assert len(denials) >= 1 + len(BELOW[ep.role]), "bad tokens and too-low roles are audited"
    # The right role succeeds.
    r = _call(api, ep, WHO_FOR_ROLE[ep.role])
    assert r.status_code == ep.ok, r.text
    audit_after = _actions(api)
    assert len(audit_after) == len(audit_before) + (1 if ep.write else 0)
    if ep.write:
        assert audit_after[-1]["actor"] == WHO_FOR_ROLE[ep.role]


def test_bob_can_submit_his_own_model_but_not_a_version_of_alices(api: Api) -> None:
    _seed(api)
    card = json.loads(GENTAMICIN_CARD.read_text())
    card["id"] = "bobs-model"
    r = api.client.post(
        "/models",
        headers=api.h("bob"),
        files={"file": ("g.xml", GENTAMICIN_SBML.read_bytes())},
        data={"card": json.dumps(card)},
    )
    assert r.status_code == 201 and r.json()["institution"] == "uni-b"
    r = api.client.post("/models", headers=api.h("bob"), **_submit_kwargs(api, "hijack"))  # type: ignore[arg-type]
    assert r.status_code == 403 and "belongs to 'uni-a'" in r.json()["detail"]
