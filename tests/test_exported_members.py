"""Each package's public surface is its ``__all__``: every name listed exists, nothing private leaks."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["interop", "interop.schema", "interop.twin", "converters", "registry"])
def test_all_names_exist_and_are_public(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=str.casefold) or len(set(exported)) == len(exported)
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} is listed in __all__ but missing"
        assert not member.startswith("_") or member == "__version__"
