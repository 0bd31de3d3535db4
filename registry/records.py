"""What the registry hands out: stored versions, their files, audit entries (frozen records)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from interop.errors import ModelError
from interop.schema import MLCard, ModelCard, ValidationRecord

__all__ = ["AuditEntry", "AuditPage", "RecordImage", "StoredFile", "StoredModel", "StoredRecord"]


@dataclass(frozen=True)
class StoredModel:
    model_id: str
    version: int
    sbml: str
    card_or_none: ModelCard | None
    sbml_sha256: str
    status: str
    format: str
    institution: str = ""
    title: str = ""
    submitted_by: str = ""
    created_at: dt.datetime | None = None
    status_changed_by: str = ""
    status_changed_at: dt.datetime | None = None
    deduplicated: bool = False
    ml_card: MLCard | None = None  # ML versions (format onnx): their card; ``sbml`` is then empty
    artefact: bytes | None = None  # ML versions: the ONNX bytes (verified against their hash)

    @property
    def has_card(self) -> bool:
        return self.card_or_none is not None

    @property
    def is_ml(self) -> bool:
        return self.ml_card is not None

    @property
    def card(self) -> ModelCard:
        """The model card; a card-less version raises ``ModelError`` (it cannot bind patients)."""
        if self.ml_card is not None:
            raise ModelError(
                f"{self.model_id}@{self.version} is an ML model (ONNX), not a mechanistic one: name it "
                "in a mechanistic card's ml_models to use it in a twin",
                source=f"{self.model_id}@{self.version}",
            )
        if self.card_or_none is None:
            raise ModelError(
                f"{self.model_id}@{self.version} has no model card: submit one to bind patients to it",
                source=f"{self.model_id}@{self.version}",
            )
        return self.card_or_none


@dataclass(frozen=True)
class StoredFile:
    path: str
    role: str
    media_format: str
    sha256: str
    size: int


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    institution: str
    action: str
    model_id: str | None
    version: int | None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    entry_sha256: str | None = None


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEntry]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class RecordImage:
    """One PNG sent with a site's validation record (its bytes: a blob named by ``sha256``)."""

    position: int
    title: str
    sha256: str
    size: int


@dataclass(frozen=True)
class StoredRecord:
    """A site's validation record as stored: its id, who sent it, when, and its images."""

    id: int
    record: ValidationRecord
    submitted_by: str
    created_at: dt.datetime
    images: tuple[RecordImage, ...] = ()
