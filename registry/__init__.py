"""The model registry: versioned, validated, searchable store of mechanistic models."""

from registry.blobs import BlobStore, sha256_hex
from registry.service import Registry, StoredModel, open_registry

__all__ = ["BlobStore", "Registry", "StoredModel", "open_registry", "sha256_hex"]
