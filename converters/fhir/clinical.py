"""Patient, Condition, Encounter and Specimen.

Patient becomes the record's pseudonymous ``Patient`` (no name, address or identifier kept);
Condition a ``Condition``; Encounter and Specimen are context: an Encounter's pseudonymous id
goes into the provenance of the items recorded in it, a Specimen's collection time becomes
the time of the Observations made on it.
"""

from __future__ import annotations

from typing import Any

from converters.fhir.context import Context, Reject, is_pseudonymised
from converters.fhir.refs import aliases_of
from converters.fhir.sources import Entry
from converters.fhir.timing import aware
from converters.pseudonym import is_pseudonym, pseudonymise
from interop.schema import Coding, Condition, Patient, Transformation

__all__ = ["convert_condition", "convert_patient", "index_encounter", "index_specimen"]

PSEUDONYM_SYSTEM = "urn:digphat:pseudonym"
CLINICAL = {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}


def patient_id(res: dict[str, Any], ctx: Context) -> str:
    """The pseudonym: keyed hash of the first identifier (system|value), else of the resource id."""
    for ident in res.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("value"):
            if ident.get("system") == PSEUDONYM_SYSTEM and is_pseudonym(ident["value"]):
                return str(ident["value"])  # a record we exported: already pseudonymous
            return pseudonymise(ctx.key, str(ident.get("system") or ""), str(ident["value"]))
    if is_pseudonymised(res) and is_pseudonym(res.get("id")):
        return str(res["id"])
    if not res.get("id"):
        raise Reject("Patient without identifier or id", "identifier")
    return pseudonymise(ctx.key, "Patient", str(res["id"]))


def convert_patient(res: dict[str, Any], model: Any, ctx: Context, entry: Entry) -> Patient:
    pid = patient_id(res, ctx)
    notes: list[Transformation] = [
        Transformation(kind="flag", detail="names, addresses, contacts, identifiers dropped"),
        ctx.shift_note(res),  # the record says whether its dates were shifted
    ]
    birth = getattr(model, "birthDate", None)
    if birth is not None:
        birth = ctx.place_date(pid, birth, res)
    gender = res.get("gender")
    patient = Patient(
        id=pid,
        sex=gender if gender in ("male", "female", "other", "unknown") else "unknown",
        birth_date=birth,
        provenance=ctx.provenance("Patient", res, entry, notes),
    )
    for key in aliases_of(res, entry.full_url, entry.aliases):
        ctx.patients[key] = pid
    return patient


def index_encounter(res: dict[str, Any], ctx: Context, entry: Entry) -> None:
    eid = ctx.item_id("Encounter", res, entry)
    for key in aliases_of(res, entry.full_url, entry.aliases):
        ctx.encounters[key] = eid


def index_specimen(res: dict[str, Any], model: Any, ctx: Context, entry: Entry) -> None:
    collection = getattr(model, "collection", None)
    notes: list[Transformation] = []
    when = None
    if collection is not None:
        period = getattr(collection, "collectedPeriod", None)
        when = aware(
            getattr(collection, "collectedDateTime", None) or (period.start if period is not None else None),
            notes,
        )
    if when is None:
        return
    for key in aliases_of(res, entry.full_url, entry.aliases):
        ctx.specimens[key] = when


def _status(concept: Any) -> str | None:
    for c in (concept or {}).get("coding") or []:
        if isinstance(c, dict) and c.get("code"):
            return str(c["code"])
    return None


def convert_condition(res: dict[str, Any], model: Any, ctx: Context, entry: Entry, pid: str) -> Condition:
    verification = _status(res.get("verificationStatus"))
    if verification in ("entered-in-error", "refuted"):
        raise Reject(f"verificationStatus {verification}: excluded", "verificationStatus", "skipped")
    clinical = _status(res.get("clinicalStatus"))
    if clinical not in CLINICAL:
        raise Reject(f"clinicalStatus {clinical!r} not usable", "clinicalStatus")
    codings = [
        c
        for c in (res.get("code") or {}).get("coding") or []
        if isinstance(c, dict) and c.get("system") and c.get("code")
    ]
    if not codings:
        raise Reject("Condition without a coded code", "code")
    first = codings[0]
    notes: list[Transformation] = []
    onset_p = getattr(model, "onsetPeriod", None)
    onset = aware(
        getattr(model, "onsetDateTime", None) or (onset_p.start if onset_p is not None else None), notes
    )
    abate = aware(getattr(model, "abatementDateTime", None), notes)
    onset = ctx.place_time(pid, onset, notes, "onset[x]", res) if onset else None
    abate = ctx.place_time(pid, abate, notes, "abatement[x]", res) if abate else None
    return Condition(
        id=ctx.item_id("Condition", res, entry),
        code=Coding(
            system=str(first["system"]),
            code=str(first["code"]),
            display=str(first["display"]) if first.get("display") else None,
        ),
        onset=onset,
        abatement=abate,
        clinical_status=clinical,  # type: ignore[arg-type]
        provenance=ctx.provenance("Condition", res, entry, notes, ctx.encounter_of(res)),
    )
