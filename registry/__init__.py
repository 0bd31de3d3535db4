"""The model registry: versioned, validated, searchable store of mechanistic models."""

from registry.auth import LOCAL, Principal
from registry.blobs import BlobStore, sha256_hex
from registry.formats import ExtraFile, UnknownFormatError, available_formats, detect_format
from registry.records import AuditEntry, RecordImage, StoredFile, StoredModel, StoredRecord
from registry.search import Page, SearchQuery, VersionSummary
from registry.service import Registry, open_registry
from registry.validation import (
    STAGES_ORDER,
    Issue,
    SimulateCheck,
    StageResult,
    ValidationReport,
    validate_model,
)

__all__ = [
    "LOCAL",
    "STAGES_ORDER",
    "AuditEntry",
    "BlobStore",
    "ExtraFile",
    "Issue",
    "Page",
    "Principal",
    "RecordImage",
    "Registry",
    "SearchQuery",
    "SimulateCheck",
    "StageResult",
    "StoredFile",
    "StoredModel",
    "StoredRecord",
    "UnknownFormatError",
    "ValidationReport",
    "VersionSummary",
    "available_formats",
    "detect_format",
    "open_registry",
    "sha256_hex",
    "validate_model",
]
