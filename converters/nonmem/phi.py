"""NONMEM ``.phi`` tables: per-subject ETAs, their variance-covariance (ETC) and OBJ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interop.errors import ConversionError

__all__ = ["PhiRow", "read_phi"]


@dataclass(frozen=True)
class PhiRow:
    subject: str  # the ID column, as text (matches the event table's ID)
    etas: tuple[float, ...]
    etc: np.ndarray  # lower triangle expanded to a symmetric matrix
    obj: float
    line: int


def read_phi(path: Path) -> dict[str, PhiRow]:
    """Rows of a ``.phi`` file by ID: whitespace-separated after a ``TABLE NO.`` title line."""
    path = Path(path)
    lines = path.read_text().splitlines()
    start = 1 if lines and lines[0].lstrip().upper().startswith("TABLE") else 0
    if len(lines) <= start:
        raise ConversionError("no header line", source=str(path), line=start + 1)
    header = lines[start].split()
    try:
        id_col = header.index("ID")
        obj_col = header.index("OBJ")
    except ValueError as exc:
        raise ConversionError(
            "the header needs ID and OBJ columns", source=str(path), line=start + 1
        ) from exc
    eta_cols = [i for i, h in enumerate(header) if h.startswith("ETA(")]
    etc_cols = [(i, h) for i, h in enumerate(header) if h.startswith("ETC(")]
    n = len(eta_cols)
    out: dict[str, PhiRow] = {}
    for lineno, text in enumerate(lines[start + 1 :], start=start + 2):
        parts = text.split()
        if not parts:
            continue
        if len(parts) != len(header):
            raise ConversionError(
                f"{len(parts)} fields, header has {len(header)}", source=str(path), line=lineno
            )
        try:
            values = [float(p) for p in parts]
        except ValueError as exc:
            raise ConversionError(
                f"not a number in {text.strip()[:60]!r}", source=str(path), line=lineno
            ) from exc
        if not all(math.isfinite(v) for v in values):
            raise ConversionError("non-finite value", source=str(path), line=lineno)
        etc = np.zeros((n, n))
        for i, h in etc_cols:
            a, b = (int(x) - 1 for x in h[4:-1].split(","))
            etc[a, b] = etc[b, a] = values[i]
        sid = parts[id_col]
        sid = str(int(values[id_col])) if values[id_col].is_integer() else sid
        out[sid] = PhiRow(sid, tuple(values[i] for i in eta_cols), etc, values[obj_col], lineno)
    return out
