"""NONMEM control stream -> (SBML, model card): the format plug-in's ``detect``, ``load``, ``convert``.

pharmpy-core parses the control stream (records, abbreviated code, ADVAN/TRANS into a
compartmental system, $OMEGA BLOCK/SAME, $THETA bounds); this module maps its statements onto
SBML rate and assignment rules and the card. Every refusal is collected first (line and
construct) and raised together: nothing is written for a model that does not convert whole.

Decisions where NONMEM is silent: time is in hours; AMT in mg and predictions in mg/L unless
``units`` says otherwise; initial estimates ($THETA/$OMEGA/$SIGMA as written) are the values;
an observation in compartment ``n`` predicts ``A(n)/Sn`` (``A(n)`` without ``Sn``), and the
compartments observed are the default output compartment, those with an ``Sn`` and those
``$ERROR`` tests ``CMT`` against; a dose compartment is oral when it is ADVAN's depot (or named
like a gut/depot), intravenous otherwise; a compartment with ``Dn`` next to a depot is the
zero-order part of an oral dose (NONMEM's split-dose idiom, ``RATE=-2``); inter-occasion ETAs
selected by an occasion data item (``IF (OCC.EQ.1) IOV = ETA(3)``) become the card's occasions,
switched by that item (the card's ``occasion_covariate``, read as NONMEM applies covariates); a
dosed compartment that is observed (a parent drug feeding its metabolite) is not a depot.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

from interop.schema import Coding, ModelCard, ReferenceOutput
from registry.formats.nonmem.build import build_conversion
from registry.formats.nonmem.stream import Problems, check_constructs, decode, read_pharmpy

__all__ = ["NONMEM_DRUG", "Conversion", "convert", "detect", "load"]

log = logging.getLogger(__name__)
NONMEM_DRUG = "urn:digphat:nonmem-model"


@dataclass(frozen=True)
class Conversion:
    """A converted control stream and what the card cannot hold."""

    sbml: str
    card: ModelCard
    warnings: tuple[str, ...] = ()


_HEAD = re.compile(rb"^\s*\$PROB", re.I | re.M)


def detect(raw: bytes) -> bool:
    """A control stream starts (after comments) with ``$PROBLEM`` and has ``$INPUT``."""
    head = raw[:65536]
    if b"\x00" in head or not _HEAD.search(head):
        return False
    return re.search(rb"^\s*\$INP", head, re.I | re.M) is not None


def load(
    raw: bytes,
    *,
    source: str | None = None,
    units: Mapping[str, str] | None = None,
    drug: Coding | None = None,
) -> tuple[str, ModelCard]:
    """SBML text and model card (raises NonmemError, a ModelError)."""
    result = convert(raw, source=source, units=units, drug=drug)
    for w in result.warnings:
        log.warning("%s: %s", source or "NONMEM", w)
    return result.sbml, result.card


def model_id(source: str | None, title: str) -> str:
    base = PurePath(source).stem if source else (title or "nonmem-model")
    out = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._")[:64] or "nonmem-model"
    return out if len(out) >= 2 else f"{out}-model"


def convert(
    raw: bytes,
    *,
    source: str | None = None,
    units: Mapping[str, str] | None = None,
    drug: Coding | None = None,
    institution: str | None = None,
    reference_outputs: tuple[ReferenceOutput, ...] = (),
) -> Conversion:
    """Convert a control stream; ``units``: UCUM units by observable id and ``"dose"``."""
    text = decode(raw, source)
    problems = Problems(source)
    check_constructs(text, problems)
    problems.raise_if_any()
    model = read_pharmpy(text, problems)
    problems.raise_if_any()
    title = " ".join(str(getattr(model, "description", "") or "").split()) or _problem_title(text)
    mid = model_id(source, title)
    drug = drug or Coding(system=NONMEM_DRUG, code=mid, display=title or mid)
    sbml, card, warnings = build_conversion(
        model,
        text,
        problems,
        model_id=mid,
        title=title or mid,
        drug=drug,
        institution=institution or "unspecified",
        units=dict(units or {}),
        reference_outputs=reference_outputs,
        source=source,
    )
    return Conversion(sbml=sbml, card=card, warnings=tuple(warnings))


def _problem_title(text: str) -> str:
    m = re.search(r"^\s*\$PROB\w*\s*(.*)$", text, re.I | re.M)
    return m[1].split(";", 1)[0].strip() if m else ""
