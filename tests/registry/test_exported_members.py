"""The registry's public surface is pinned (STYLE.md item 1)."""

import registry


def test_all_is_pinned() -> None:
    assert sorted(registry.__all__) == sorted(
        [
            "LOCAL",
            "STAGES_ORDER",
            "AuditEntry",
            "BlobStore",
            "ExtraFile",
            "Issue",
            "Page",
            "Principal",
            "Registry",
            "SearchQuery",
            "SimulateCheck",
            "StageResult",
            "StoredFile",
            "StoredModel",
            "UnknownFormatError",
            "ValidationReport",
            "VersionSummary",
            "available_formats",
            "detect_format",
            "open_registry",
            "sha256_hex",
            "validate_model",
        ]
    )
    for name in registry.__all__:
        assert hasattr(registry, name)
