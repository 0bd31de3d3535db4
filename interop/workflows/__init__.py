"""Workflows: the composition root's use cases that wire converters, registry and twin.

Only ``interop.cli``, ``interop.api`` and this package import across parts; the parts
themselves stay independent (docs/architecture.md, "Dependencies point one way").
"""
