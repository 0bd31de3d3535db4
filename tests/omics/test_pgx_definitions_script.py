"""scripts/pgx_definitions.py on a small wheel built here: the tables it writes load and call."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from converters.omics.calling import call_diplotype, compile_gene
from converters.omics.definitions import GeneDefinition
from interop.schema.base import parse
from scripts.pgx_definitions import main

TABLES = {
    "gene-table": [
        {"Gene": "TPMT", "PhenotypeMethod": "Diplotype", "RefAllele": "*1", "GRCh38Default": "*1"},
    ],
    "variant-table": [
        {
            "Gene": "TPMT",
            "rsID": "rs1800460",
            "GRCh38Position": "18138997",
            "GRCh37Allele": "C",
            "GRCh38Allele": "C",
            "Variant": "T",
        },
        {
            "Gene": "TPMT",
            "rsID": "rs1142345",
            "GRCh38Position": "18130687",
            "GRCh37Allele": "T",
            "GRCh38Allele": "T",
            "Variant": "C",
        },
    ],
    "allele-table": [
        {
            "Gene": "TPMT",
            "StarAllele": "*1",
            "ActivityScore": "N/A",
            "Function": "Normal Function",
            "GRCh38Core": "N/A",
            "SV": "FALSE",
        },
        {
            "Gene": "TPMT",
            "StarAllele": "*3A",
            "ActivityScore": "N/A",
            "Function": "No Function",
            "GRCh38Core": "6-18138997-C-T,6-18130687-T-C",
            "SV": "FALSE",
        },
        {
            "Gene": "TPMT",
            "StarAllele": "*3C",
            "ActivityScore": "N/A",
            "Function": "No Function",
            "GRCh38Core": "6-18130687-T-C",
            "SV": "FALSE",
        },
    ],
    "diplotype-table": [
        {"Gene": "TPMT", "Diplotype": "*1/*1", "Phenotype": "Normal Metabolizer"},
        {"Gene": "TPMT", "Diplotype": "*1/*3A", "Phenotype": "Intermediate Metabolizer"},
        {"Gene": "TPMT", "Diplotype": "*3A/*3C", "Phenotype": "Poor Metabolizer"},
    ],
    "equation-table": [{"Gene": "CYP2C9", "Phenotype": "Poor Metabolizer", "Equation": "0 <= score < 1"}],
}


def _wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, rows in TABLES.items():
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            zf.writestr(f"pypgx/api/data/{name}.csv", out.getvalue())
        zf.writestr("pypgx-9.9.9.dist-info/METADATA", "Name: pypgx\nVersion: 9.9.9\n")
        zf.writestr("pypgx-9.9.9.dist-info/licenses/LICENSE", "MIT License\n")
    return path


def test_regenerates_versioned_tables_from_a_pypgx_wheel(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "pypgx-9.9.9-py3-none-any.whl")
    out = tmp_path / "pgx"
    assert main(["--pypgx", str(wheel), "--out", str(out), "--genes", "TPMT"]) == 0
    manifest = json.loads((out / "SOURCE.json").read_text())
    assert (manifest["source"], manifest["version"], manifest["genes"]) == ("pypgx", "9.9.9", ["TPMT"])
    assert len(manifest["sha256"]) == 64 and (out / "LICENSE-pypgx.txt").read_text() == "MIT License\n"
    d = parse(GeneDefinition, json.loads((out / "TPMT.json").read_text()), source="TPMT.json")
    assert d.version == "pypgx-9.9.9" and d.allele("*3A").function == "No function"
    assert d.phenotype_of("*1", "*3A") == ("Intermediate Metabolizer", None)
    gene = compile_gene(d)
    ids = [p.id for p in d.positions]
    obs = tuple(("T", "C", None) if pid == "rs1142345" else ("C", "C", None) for pid in ids)
    assert call_diplotype(gene, obs).diplotype == "*1/*3C"
