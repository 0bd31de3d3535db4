"""Fixtures: a registry on SQLite and on PostgreSQL (a fresh schema per test, dropped after)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from interop.schema import ModelCard, parse_json
from registry import Registry, open_registry
from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML, POSTGRES_URL, require_postgres


def _pg_available() -> bool:
    try:
        eng = create_engine(POSTGRES_URL)
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:
        return False


PG = _pg_available()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database URL whose search_path is a fresh schema; the schema is dropped afterwards."""
    require_postgres(PG)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(db_url, tmp_path / "blobs")
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def validating_store(db_url: str, tmp_path: Path) -> Iterator[Registry]:
    from interop.workflows.registry_validation import twin_simulate_check

    reg = open_registry(db_url, tmp_path / "blobs", simulate_check=twin_simulate_check)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="session")
def gentamicin() -> tuple[str, ModelCard]:
    return GENTAMICIN_SBML.read_text(), parse_json(ModelCard, GENTAMICIN_CARD.read_text())
