"""The public surfaces of interop.cohort and interop.validation are their ``__all__``."""

import importlib

import pytest


@pytest.mark.parametrize("name", ["interop.cohort", "interop.validation"])
def test_all_names_exist_unique_and_public(name: str) -> None:
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for member in module.__all__:
        assert hasattr(module, member) and not member.startswith("_")
