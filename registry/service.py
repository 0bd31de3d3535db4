"""The registry's service layer: submit a model version, read it back by id and version.

A version is immutable: new content makes a new version number; identical content (same
SBML bytes and card) is recognised by its hash and returns the existing version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from interop.errors import NotFoundError, RegistryError
from interop.schema import ModelCard, parse
from registry.blobs import BlobStore
from registry.db import Base, ModelRow, VersionRow, make_engine

__all__ = ["Registry", "StoredModel", "open_registry"]


@dataclass(frozen=True)
class StoredModel:
    model_id: str
    version: int
    sbml: str
    card: ModelCard
    sbml_sha256: str
    status: str
    format: str


class Registry:
    def __init__(self, database_url: str, blob_dir: Path) -> None:
        self.engine = make_engine(database_url)
        Base.metadata.create_all(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.blobs = BlobStore(blob_dir)

    def submit(self, sbml: str, card: ModelCard, *, submitted_by: str = "local",
               fmt: str = "sbml") -> StoredModel:
        """Store a new version of ``card.id`` (or return the identical existing one)."""
        data = sbml.encode("utf-8")
        card_json = json.loads(card.model_dump_json())
        content = hashlib.sha256(data + b"\0" + json.dumps(card_json, sort_keys=True).encode()).hexdigest()
        with self.sessions.begin() as s:
            existing = s.scalar(select(VersionRow).where(VersionRow.model_id == card.id,
                                                         VersionRow.content_sha256 == content))
            if existing is not None:
                return self._stored(existing)
            digest = self.blobs.put(data)  # before the row: a row never points at a missing blob
            if s.get(ModelRow, card.id) is None:
                s.add(ModelRow(id=card.id, title=card.title, institution=card.institution))
                s.flush()
            number = (s.scalar(select(func.max(VersionRow.number)).where(VersionRow.model_id == card.id)) or 0) + 1
            row = VersionRow(model_id=card.id, number=number, sbml_sha256=digest, content_sha256=content,
                             format=fmt, card=card_json, submitted_by=submitted_by)
            s.add(row)
            s.flush()
            return self._stored(row, sbml)

    def get(self, model_id: str, version: int | None = None) -> StoredModel:
        """A stored version (the latest when ``version`` is None), bytes verified."""
        with self.sessions() as s:
            q = select(VersionRow).where(VersionRow.model_id == model_id)
            q = q.where(VersionRow.number == version) if version is not None else q.order_by(
                VersionRow.number.desc())
            row = s.scalars(q.limit(1)).first()
            if row is None:
                what = f"{model_id}@{version}" if version is not None else model_id
                raise NotFoundError(f"no model version {what} in the registry")
            return self._stored(row)

    def list_models(self) -> list[StoredModel]:
        with self.sessions() as s:
            rows = s.scalars(select(VersionRow).order_by(VersionRow.model_id, VersionRow.number)).all()
            return [self._stored(r, load=False) for r in rows]

    def _stored(self, row: VersionRow, sbml: str | None = None, load: bool = True) -> StoredModel:
        if sbml is None and load:
            sbml = self.blobs.get(row.sbml_sha256).decode("utf-8")
        card = parse(ModelCard, row.card, source=f"registry {row.model_id}@{row.number}")
        return StoredModel(row.model_id, row.number, sbml or "", card, row.sbml_sha256, row.status, row.format)

    def close(self) -> None:
        self.engine.dispose()


def open_registry(database_url: str, blob_dir: Path) -> Registry:
    """Open (creating if needed) the registry at ``database_url`` with blobs under ``blob_dir``."""
    try:
        return Registry(database_url, blob_dir)
    except Exception as exc:  # sqlalchemy raises many types on a bad URL or unreachable server
        if isinstance(exc, RegistryError):
            raise
        raise RegistryError(f"cannot open the registry database: {exc}", source=database_url) from exc


