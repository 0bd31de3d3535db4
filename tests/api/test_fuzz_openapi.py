"""Schemathesis over the API's own OpenAPI document: no input on any route gives a 500.

Each operation gets a bounded number of generated cases (curator token, so the generated input
reaches the handlers rather than stopping at 401/403), against a registry seeded with a model.
The twin routes are left out: a valid random patient starts a real fit (minutes), and their
input validation is pydantic's, covered by tests/twin.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from interop.api import create_app
from interop.settings import Settings
from tests.api.conftest import make_users
from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML

EXAMPLES = 8


@pytest.mark.slow
def test_no_route_answers_500(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'registry.sqlite'}")
    tokens = make_users(s)
    app = create_app(s, max_upload_bytes=200_000, rate_per_minute=0)
    auth = {"Authorization": f"Bearer {tokens['carol']}"}
    with TestClient(app) as c:
        r = c.post(
            "/models",
            headers={"Authorization": f"Bearer {tokens['alice']}"},
            files={"file": ("g.xml", GENTAMICIN_SBML.read_bytes())},
            data={"card": GENTAMICIN_CARD.read_text()},
        )
        assert r.status_code == 201, r.text
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    ran: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.startswith("/twin/"):
            continue
        ran.append(f"{op.method.upper()} {op.path}")

        @given(case=op.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=auth)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                )

        run()
    assert len(ran) >= 18, ran
    assert failures == []
