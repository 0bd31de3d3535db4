"""Shared helpers for the FHIR converter tests: a key, and feeds built from the real R4 examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests import data

KEY = b"test-key-0123456789abcdef-not-secret"


def rid(rtype: str, raw: str, key: bytes = KEY) -> str:
    """How outputs name a resource: the keyed hash of its type and raw id."""
    from converters.pseudonym import pseudonymise

    return pseudonymise(key, rtype, raw)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def collection(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"http://example.org/fhir/{r.get('resourceType')}/{r.get('id', i)}", "resource": r}
            for i, r in enumerate(resources)
        ],
    }


def pat1() -> dict[str, Any]:
    """The R4 Patient example, as the ``Patient/pat1`` the medication examples point to."""
    p = load(data.FHIR_PATIENT_EXAMPLE)
    p["id"] = "pat1"
    return p


def weight_of_pat1(when: str = "2015-01-15T04:00:00+01:00") -> dict[str, Any]:
    """The R4 weight example (185 [lb_av]) for pat1 at ``when``."""
    w = copy.deepcopy(load(data.FHIR_WEIGHT_LB))
    w["subject"] = {"reference": "Patient/pat1"}
    w["effectiveDateTime"] = when
    return w


@pytest.fixture
def key() -> bytes:
    return KEY
