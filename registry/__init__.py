"""The model registry: versioned, validated, searchable store of mechanistic models."""

__all__: list[str] = []
