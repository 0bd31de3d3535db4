"""Expression matrices: orientation, feature ids, scale, Parquet with SHA-256, sample linking."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

from converters.omics import PatientIds, import_expression, load_record
from converters.omics.expression import detect_scale
from interop.errors import ConversionError

GENES = {
    "CYP3A5": "ENSG00000106258",
    "CYP2C19": "ENSG00000165841",
    "TPMT": "ENSG00000137364",
    "DPYD": "ENSG00000188641",
}
MAPPING = {"S1": "patient-0001", "S2": "patient-0002"}


def _mapping_file(tmp_path: Path) -> Path:
    p = tmp_path / "features.tsv"
    p.write_text("hgnc_symbol\tensembl_gene_id\n" + "".join(f"{s}\t{e}\n" for s, e in GENES.items()))
    return p


def test_tsv_genes_by_samples_with_counts(tmp_path: Path) -> None:
    path = tmp_path / "counts.tsv"
    path.write_text("gene\tS1\tS2\tS3\nCYP3A5\t10\t0\t5\nTPMT\t3\t7\t1\nDPYD\t0\t2\t9\n")
    report = import_expression(path, tmp_path / "out", PatientIds(mapping=MAPPING))
    assert report.tallies["samples"].converted == 2
    assert report.tallies["samples"].skipped == {"sample id not in the mapping file": 1}
    record = load_record(tmp_path / "out", "patient-0001")
    assert record is not None
    (ref,) = record.omics
    assert (ref.scale, ref.feature_namespace, ref.sample_id, ref.assay) == (
        "counts",
        "hgnc.symbol",
        "S1",
        "rna-seq",
    )
    stored = tmp_path / "out" / ref.path
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == ref.sha256
    df = pd.read_parquet(stored).set_index("feature_id")
    assert list(df.columns) == ["S1", "S2"]  # the unmapped sample is not stored
    assert df.loc["TPMT", "S2"] == 7


def test_csv_samples_by_genes_detected_and_mapped_to_symbols(tmp_path: Path) -> None:
    path = tmp_path / "tpm.csv"
    ens = list(GENES.values())
    path.write_text(
        "sample," + ",".join(e + ".7" for e in ens) + ",ENSG00000000003\n"
        "S1,1.5,2.25,3.0,10.0,4.0\nS2,0.5,1.0,2.5,3.5,7.0\n"
    )
    report = import_expression(
        path,
        tmp_path / "out",
        PatientIds(mapping=MAPPING, key="k"),
        features=_mapping_file(tmp_path),
        namespace="hgnc.symbol",
        scale="log2",
    )
    features = report.tallies["features"]
    assert features.converted == 4 and features.balanced
    assert features.skipped == {"unrecognised feature id (not in the mapping table)": 1}
    pid = PatientIds(mapping=MAPPING, key="k").patient_id("S2")
    record = load_record(tmp_path / "out", str(pid))
    assert record is not None
    (ref,) = record.omics
    assert ref.feature_namespace == "hgnc.symbol" and ref.scale == "log2"
    assert ref.sample_id != "S2"  # pseudonymised column
    df = pd.read_parquet(tmp_path / "out" / ref.path).set_index("feature_id")
    assert sorted(df.index) == sorted(GENES)
    assert df.loc["DPYD", ref.sample_id] == 3.5
    details = " ".join(t.detail for t in ref.provenance.transformations)
    assert "samples-by-genes (detected" in details and "Ensembl version suffixes removed" in details


def test_h5ad_via_anndata(tmp_path: Path) -> None:
    x = np.array([[5.0, 0.0, 3.0], [1.0, 8.0, 0.0]])
    adata = anndata.AnnData(
        X=x, obs=pd.DataFrame(index=["S1", "S2"]), var=pd.DataFrame(index=list(GENES.values())[:3])
    )
    path = tmp_path / "m.h5ad"
    adata.write_h5ad(path)
    report = import_expression(
        path, tmp_path / "out", PatientIds(mapping=MAPPING), features=_mapping_file(tmp_path)
    )
    assert report.tallies["samples"].converted == 2
    record = load_record(tmp_path / "out", "patient-0002")
    assert record is not None
    (ref,) = record.omics
    assert ref.feature_namespace == "ensembl.gene" and ref.scale == "counts"
    df = pd.read_parquet(tmp_path / "out" / ref.path).set_index("feature_id")
    assert df.loc[list(GENES.values())[1], "S2"] == 8.0


def test_non_numeric_cell_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("gene\tS1\tS2\nTPMT\t3\tabc\n")
    with pytest.raises(ConversionError, match="non-numeric value 'abc' at row 'TPMT'") as err:
        import_expression(path, tmp_path / "out", PatientIds(mapping=MAPPING))
    assert err.value.line == 2 and err.value.field == "S2"


def test_symbols_to_ensembl_needs_a_mapping_table(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("gene\tS1\nTPMT\t3\n")
    with pytest.raises(ConversionError, match="needs --features"):
        import_expression(path, tmp_path / "out", PatientIds(mapping=MAPPING), namespace="ensembl.gene")


def test_detect_scale() -> None:
    assert detect_scale(np.array([[1.0, 2.0], [0.0, 5.0]])) == "counts"
    assert detect_scale(np.array([[-1.2, 2.5], [0.3, 5.1]])) == "log2"
    tpm = np.array([[250000.5, 500000.0], [749999.5, 500000.0]])
    assert detect_scale(tpm) == "tpm"
