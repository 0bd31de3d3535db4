"""Omics converters: VCF pharmacogenomics, PharmCAT, FHIR genomics and expression matrices.

Everything lands in the shared patient schema: ``PatientRecord.genotypes`` (one ``Genotype``
per gene and source) and ``PatientRecord.omics`` (``OmicsRef`` to a Parquet matrix).
"""

from converters.omics.calling import GeneCall, call_diplotype, compile_gene
from converters.omics.definitions import PANEL, GeneDefinition, load_definition, load_panel
from converters.omics.expression import import_expression, read_matrix
from converters.omics.fhir_export import export_genotypes_bundle
from converters.omics.fhir_genomics import import_fhir_genomics
from converters.omics.ids import PatientIds, pseudonymise, read_mapping
from converters.omics.pgx import genotype_from_call, import_vcf
from converters.omics.pharmcat import PharmcatCall, import_pharmcat, read_pharmcat
from converters.omics.report import ImportReport, Tally
from converters.omics.store import load_record, merge_items, save_record, write_items
from converters.omics.vcf import VcfCalls, call_vcf, detect_build

__all__ = [
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
]
