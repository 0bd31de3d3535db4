"""Run the registry's Alembic migrations programmatically (on every open, to ``head``).

The ini and scripts ship as package data under ``registry/migrations``; the connection is
handed to Alembic's env.py, so a PostgreSQL ``search_path`` set on the URL applies.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from interop.errors import RegistryError

__all__ = ["upgrade"]

log = logging.getLogger(__name__)


def _config() -> Config:
    here = Path(str(files("registry").joinpath("migrations")))
    cfg = Config(str(here / "alembic.ini"))
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("version_locations", str(here / "versions"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database behind ``engine`` to ``revision``."""
    cfg = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Serialise concurrent first opens of an empty database (two servers, many tests).
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72537201)")
        tables = set(inspect(conn).get_table_names())
        if "model_versions" in tables and "alembic_version" not in tables:
            raise RegistryError(
                "this database was made by the pre-migration registry skeleton; move it aside "
                "(its models can be re-imported with `interop registry import-dir`)",
                source=str(engine.url.render_as_string(hide_password=True)),
            )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    log.debug("registry schema at %s", revision)
