"""Converters: hospital and omics formats into the shared patient schema, and back."""

from converters.fhir import ConversionResult, convert_bundle, convert_bundle_file
from converters.pseudonym import load_key, pseudonymise
from converters.report import ConversionReport

__all__ = [
    "ConversionReport",
    "ConversionResult",
    "convert_bundle",
    "convert_bundle_file",
    "load_key",
    "pseudonymise",
]
