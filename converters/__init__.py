"""Converters: hospital and omics formats into the shared patient schema, and back."""

__all__: list[str] = []
