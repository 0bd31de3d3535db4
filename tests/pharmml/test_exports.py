"""The public surface of the PharmML format plug-in, pinned."""

from __future__ import annotations

import ast
from pathlib import Path

import registry.formats.pharmml as pharmml
from interop.errors import ModelError

PACKAGE = Path(pharmml.__file__).parent


def test_exported_members() -> None:
    assert sorted(pharmml.__all__) == sorted(
        ["SUPPORTED_VERSIONS", "Conversion", "PharmMLError", "Problem", "convert", "detect", "load"]
    )
    assert issubclass(pharmml.PharmMLError, ModelError)
    assert pharmml.SUPPORTED_VERSIONS == ("0.6", "0.7", "0.8", "0.9")


def test_imports_only_schema_and_errors_from_interop() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("interop"):
                assert node.module in (
                    "interop.errors",
                    "interop.schema",
                    "interop.schema.units",
                ), (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("interop") for a in node.names), path.name
