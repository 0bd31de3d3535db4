"""FHIR feeds into the shared patient schema, and back."""

from converters.fhir.codes import CodeTables, load_code_tables
from converters.fhir.convert import (
    ConversionResult,
    FhirConverter,
    convert_bundle,
    convert_bundle_file,
    convert_paths,
)
from converters.fhir.sink import MemorySink, SpoolSink
from converters.fhir.versions import FhirVersion, normalise_version

__all__ = [
    "CodeTables",
    "ConversionResult",
    "FhirConverter",
    "FhirVersion",
    "MemorySink",
    "SpoolSink",
    "convert_bundle",
    "convert_bundle_file",
    "convert_paths",
    "load_code_tables",
    "normalise_version",
]
