"""The omics package's public surface is pinned, and its CLI commands are registered."""

from __future__ import annotations

import converters.omics
from interop.cli import load_command

EXPECTED = {
    "PANEL",
    "GeneCall",
    "GeneDefinition",
    "ImportReport",
    "PatientIds",
    "PharmcatCall",
    "Tally",
    "VcfCalls",
    "call_diplotype",
    "call_vcf",
    "compile_gene",
    "detect_build",
    "export_genotypes_bundle",
    "genotype_from_call",
    "import_expression",
    "import_fhir_genomics",
    "import_pharmcat",
    "import_vcf",
    "load_definition",
    "load_panel",
    "load_record",
    "merge_items",
    "pseudonymise",
    "read_mapping",
    "read_matrix",
    "read_pharmcat",
    "save_record",
    "write_items",
}


def test_public_surface_is_pinned() -> None:
    assert set(converters.omics.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(converters.omics, name) is not None


def test_import_commands_are_registered() -> None:
    imports = load_command("import")  # the root group loads its command modules lazily
    assert {"vcf", "pharmcat", "fhir-genomics", "expression"} <= set(imports.commands)  # type: ignore[attr-defined]
    assert "export-fhir" in load_command("omics").commands  # type: ignore[attr-defined]
