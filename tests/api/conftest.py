"""Fixtures: the API app over a fresh registry (SQLite and PostgreSQL) and users of each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from interop.api import create_app
from interop.settings import Settings
from interop.workflows.registry_validation import open_validating_registry
from tests.registry.conftest import db_url, pg_url  # noqa: F401  (shared fixtures)


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    settings: Settings
    tokens: dict[str, str]

    def h(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}


USERS = {  # name: (institution, role)
    "rita": ("uni-a", "reader"),
    "alice": ("uni-a", "contributor"),
    "bob": ("uni-b", "contributor"),
    "carol": ("hub", "curator"),
}


def make_users(settings: Settings) -> dict[str, str]:
    reg = open_validating_registry(settings)
    try:
        return {name: reg.create_user(name, inst, role) for name, (inst, role) in USERS.items()}  # type: ignore[arg-type]
    finally:
        reg.close()


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:  # noqa: F811
    settings = Settings(home=tmp_path / "home", database_url=db_url)
    tokens = make_users(settings)
    app = create_app(settings, max_upload_bytes=2_000_000)
    with TestClient(app) as client:
        yield Api(client, app, settings, tokens)
