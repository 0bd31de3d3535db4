"""The omics CLI commands are registered (the package's public names are pinned in
tests/test_exported_members.py, their one home)."""

from __future__ import annotations

from interop.cli import load_command


def test_import_commands_are_registered() -> None:
    imports = load_command("import")  # the root group loads its command modules lazily
    assert {"vcf", "pharmcat", "fhir-genomics", "expression"} <= set(imports.commands)  # type: ignore[attr-defined]
    assert "export-fhir" in load_command("omics").commands  # type: ignore[attr-defined]
