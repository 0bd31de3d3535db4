"""FHIR feeds into the shared patient schema."""

from converters.fhir.codes import CodeTables, load_code_tables
from converters.fhir.convert import ConversionResult, convert_bundle, convert_bundle_file

__all__ = ["CodeTables", "ConversionResult", "convert_bundle", "convert_bundle_file", "load_code_tables"]
