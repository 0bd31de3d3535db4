"""Expression (and other omics) matrices -> Parquet beside the records, referenced with SHA-256.

Input: TSV/CSV (genes x samples or samples x genes, declared or detected from which labels are
the mapped sample ids) or AnnData ``.h5ad`` (read with anndata: observations are samples).
Feature ids are normalised (Ensembl version suffixes dropped; HGNC symbol <-> Ensembl gene id
through a mapping table when one is given); the scale is declared or detected. The stored
matrix is genes x samples, one column per linked sample (pseudonymised with the key), and
each patient's record gets an ``OmicsRef`` naming the file, its SHA-256 and its column.
Unmapped samples, unknown or duplicate features are left out and reported with counts.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Literal, cast

import numpy as np
import pandas as pd

from converters.omics.ids import PatientIds
from converters.omics.pgx import provenance_for
from converters.omics.report import ImportReport
from converters.omics.store import write_items
from interop.errors import ConversionError, MissingExtraError
from interop.schema import OmicsRef, Transformation

__all__ = [
    "detect_scale",
    "import_expression",
    "normalise_features",
    "orient_matrix",
    "read_feature_map",
    "read_matrix",
]

CONVERTER = "converters.omics.expression"
ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{11}(\.\d+)?$")
Scale = Literal["counts", "tpm", "fpkm", "log2", "log2-tpm", "normalised", "other"]
SCALES = ("counts", "tpm", "fpkm", "log2", "log2-tpm", "normalised", "other")
ASSAYS = ("rna-seq", "microarray", "proteomics", "metabolomics", "methylation", "other")
NAMESPACES = ("hgnc.symbol", "ensembl.gene")


def read_matrix(path: Path) -> tuple[pd.DataFrame, str | None]:
    """The matrix as stored (labels as strings) and the orientation the format fixes, if any."""
    suffix = path.suffix.lower()
    if suffix == ".h5ad":
        try:
            import anndata  # the 'omics' extra
        except ImportError as exc:
            raise MissingExtraError("anndata", extra="omics", purpose="reading .h5ad") from exc
        try:
            adata = anndata.read_h5ad(path)
        except Exception as exc:  # h5py / anndata raise many kinds; all mean "not readable"
            raise ConversionError(f"cannot read as AnnData: {exc}", source=str(path)) from exc
        df = adata.to_df()
        df.index = df.index.astype(str)
        df.columns = df.columns.astype(str)
        return df, "samples-by-genes"
    sep = "," if suffix == ".csv" else "\t"
    missing = ["", "NA", "NaN", "nan", "."]
    try:
        df = pd.read_csv(path, sep=sep, index_col=0, na_values=missing, keep_default_na=False, dtype={0: str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ConversionError(f"cannot read as a {sep!r}-separated table: {exc}", source=str(path)) from exc
    if df.shape[1] == 0:
        raise ConversionError("no data columns (wrong separator?)", source=str(path))
    df.index = df.index.astype(str).str.strip()
    df.columns = [str(c).strip() for c in df.columns]
    # Numeric columns parse as floats in C; only a column that did not is looked at cell by cell.
    for n, column in enumerate(df.columns):
        if pd.api.types.is_numeric_dtype(df[column]):
            continue
        values = df[column]
        coerced = pd.to_numeric(values, errors="coerce")
        bad = coerced.isna() & values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ConversionError(
                f"non-numeric value {values.iloc[row]!r} at row {df.index[row]!r}, "
                f"column {column!r} ({int(bad.sum())} such cells in that column)",
                source=str(path),
                line=row + 2,
                field=str(column),
            )
        df[df.columns[n]] = coerced
    return df.astype(float), None


def _looks_like_features(labels: pd.Index) -> float:
    values = [str(v) for v in labels]
    return sum(bool(ENSEMBL.match(v)) for v in values) / max(len(values), 1)


def orient_matrix(
    df: pd.DataFrame, orientation: str, sample_ids: set[str], fixed: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Genes x samples, and how the orientation was decided."""
    if orientation not in ("auto", "genes-by-samples", "samples-by-genes"):
        raise ConversionError(f"unknown orientation {orientation!r}", field="orientation")
    how = f"declared {orientation}"
    if orientation == "auto" and fixed:
        orientation, how = fixed, f"{fixed} (fixed by the file format)"
    if orientation == "auto":
        in_cols = len(sample_ids & set(df.columns))
        in_rows = len(sample_ids & set(df.index))
        if in_cols != in_rows:
            orientation = "genes-by-samples" if in_cols > in_rows else "samples-by-genes"
            how = f"{orientation} (detected: {max(in_cols, in_rows)} mapped sample ids found)"
        else:
            cols, rows = _looks_like_features(df.columns), _looks_like_features(df.index)
            if cols == rows:
                raise ConversionError(
                    "cannot tell genes from samples; give --orientation", field="orientation"
                )
            orientation = "genes-by-samples" if rows > cols else "samples-by-genes"
            how = f"{orientation} (detected from Ensembl-like labels)"
    return (df if orientation == "genes-by-samples" else df.T), how


def read_feature_map(path: Path) -> list[tuple[str, str]]:
    """``(hgnc_symbol, ensembl_gene_id)`` pairs from a CSV/TSV with those columns."""
    lines = [ln for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    if not lines:
        raise ConversionError("the feature mapping is empty", source=str(path))
    reader = csv.DictReader(lines, delimiter="\t" if "\t" in lines[0] else ",")
    if not {"hgnc_symbol", "ensembl_gene_id"} <= set(reader.fieldnames or ()):
        raise ConversionError("needs columns hgnc_symbol and ensembl_gene_id", source=str(path), line=1)
    return [
        (r["hgnc_symbol"].strip(), r["ensembl_gene_id"].strip().split(".")[0])
        for r in reader
        if r["hgnc_symbol"] and r["ensembl_gene_id"]
    ]


def normalise_features(
    df: pd.DataFrame,
    report: ImportReport,
    *,
    mapping: list[tuple[str, str]] | None,
    namespace: str | None,
) -> tuple[pd.DataFrame, str, list[str]]:
    """Rename features into ``namespace``; unknown and duplicate ones are dropped and counted."""
    tally = report.tally("features")
    source_ns = "ensembl.gene" if _looks_like_features(df.index) > 0.5 else "hgnc.symbol"
    target = namespace or source_ns
    if target not in NAMESPACES:
        raise ConversionError(f"unknown namespace {target!r}; use {NAMESPACES}", field="namespace")
    notes = []
    ids = [i.split(".")[0] if ENSEMBL.match(i) else i for i in df.index]
    if any(a != b for a, b in zip(ids, df.index, strict=True)):
        notes.append("Ensembl version suffixes removed")
    if target != source_ns or mapping is not None:
        if mapping is None:
            raise ConversionError(
                f"features are {source_ns}; mapping them to {target} needs --features",
                field="namespace",
            )
        if target == "hgnc.symbol":
            table = {ens: sym for sym, ens in mapping} | {sym: sym for sym, _ in mapping}
        else:
            table = {sym: ens for sym, ens in mapping} | {ens: ens for _, ens in mapping}
        new_ids: list[str | None] = [table.get(i) for i in ids]
        if target != source_ns:
            notes.append(f"features mapped {source_ns} -> {target} with the mapping table")
    else:
        new_ids = list(ids)
    keep: list[int] = []
    seen: set[str] = set()
    for n, (old, new) in enumerate(zip(df.index, new_ids, strict=True)):
        if new is None:
            tally.skip("unrecognised feature id (not in the mapping table)", str(old))
        elif new in seen:
            tally.reject("duplicate feature after normalisation", f"{old} -> {new}")
        else:
            seen.add(new)
            keep.append(n)
            tally.ok()
    out = df.iloc[keep].copy()
    out.index = pd.Index([new_ids[n] for n in keep], name="feature_id")
    return out, target, notes


def detect_scale(values: np.ndarray) -> Scale:
    """counts (non-negative integers), tpm (columns sum to 1e6), log2 (negatives or small), else
    normalised."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "other"
    if (finite < 0).any():
        return "log2"
    if np.allclose(finite, np.round(finite), rtol=0, atol=1e-9):
        return "counts"
    sums = np.nansum(values, axis=0)
    if sums.size and np.allclose(sums, 1e6, rtol=0.01):
        return "tpm"
    if finite.max() <= 30:
        return "log2"
    return "normalised"


def _write_parquet(df: pd.DataFrame, directory: Path, stem: str) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    try:
        df.reset_index().to_parquet(tmp, index=False)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        final = directory / f"{stem}-{digest[:12]}.parquet"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final, digest


def import_expression(
    path: Path,
    out: Path,
    ids: PatientIds,
    *,
    features: Path | None = None,
    namespace: str | None = None,
    orientation: str = "auto",
    scale: str | None = None,
    assay: str = "rna-seq",
) -> ImportReport:
    """Store the matrix of ``path`` under ``out/omics/`` and reference it from each record."""
    if ids.mapping is None:
        raise ConversionError("expression samples are linked to patients by --samples", field="samples")
    if assay not in ASSAYS:
        raise ConversionError(f"unknown assay {assay!r}; use {ASSAYS}", field="assay")
    if scale is not None and scale not in SCALES:
        raise ConversionError(f"unknown scale {scale!r}; use {SCALES}", field="scale")
    report = ImportReport(source=str(path))
    raw, fixed = read_matrix(path)
    matrix, how = orient_matrix(raw, orientation, set(ids.mapping), fixed)
    mapping = read_feature_map(features) if features else None
    matrix, ns, notes = normalise_features(matrix, report, mapping=mapping, namespace=namespace)
    samples = report.tally("samples")
    linked: dict[str, tuple[str, str]] = {}  # column -> (patient id, stored column)
    for column in matrix.columns:
        try:
            patient_id = ids.patient_id(str(column))
        except ConversionError as exc:
            samples.reject(
                "unusable patient id",
                f"{ids.source_name(path)}: {ids.source_ref(str(column))}: {exc.message}",
            )
            continue
        if patient_id is None:
            samples.skip(
                "sample id not in the mapping file", f"{ids.source_name(path)}: {ids.source_ref(str(column))}"
            )
            continue
        linked[str(column)] = (patient_id, ids.source_ref(str(column)))
    if not linked:
        raise ConversionError("no sample of the matrix is in the mapping file", source=str(path))
    stored = matrix[list(linked)].rename(columns={c: v[1] for c, v in linked.items()})
    found = detect_scale(stored.to_numpy(dtype=float))
    used = cast(Scale, scale or found)
    if scale and scale != found:
        report.warnings.append(f"declared scale {scale} but the values look like {found}")
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", ids.source_name(path).removesuffix(path.suffix))
    file, digest = _write_parquet(stored, out / "omics", stem)
    relative = file.relative_to(out).as_posix()
    transformations = [
        Transformation(kind="derivation", detail=f"orientation {how}; stored genes x samples"),
        Transformation(
            kind="derivation",
            detail=f"scale {'declared' if scale else 'detected'}: {used}",
        ),
        *(Transformation(kind="code-mapping", detail=n) for n in notes),
    ]
    if ids.pseudonymising:
        transformations.append(
            Transformation(kind="pseudonymisation", detail="sample columns -> HMAC-SHA256 prefix")
        )
    for patient_id, stored_col in linked.values():
        prov = provenance_for(
            f"omics:{ids.source_name(path)}",
            converter=CONVERTER,
            resource_type="expression matrix column",
            resource_id=stored_col,
            source_file=ids.source_name(path),
            transformations=tuple(transformations),
        )
        ref = OmicsRef(
            id=f"omics-{assay}-{digest[:12]}",
            assay=cast(
                Literal["rna-seq", "microarray", "proteomics", "metabolomics", "methylation", "other"],
                assay,
            ),
            feature_namespace=ns,
            scale=used,
            path=relative,
            sha256=digest,
            sample_id=stored_col,
            provenance=prov,
        )
        report.written.append(str(write_items(out, patient_id, prov, omics=[ref])))
        samples.ok()
    report.counts[f"matrix stored: {relative}"] = stored.shape[0]
    return report
