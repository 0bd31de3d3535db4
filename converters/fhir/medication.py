"""Medication, MedicationAdministration, MedicationRequest, MedicationStatement -> ``Dose``.

Administrations become ``administered`` doses, requests ``ordered`` and statements ``reported``:
three statuses, never merged. Dose amounts are normalised to mg when they are masses; a
non-UCUM unit (``TAB``) or a volume is resolved through the Medication's ingredient strength;
a unitless dose (1 = one tablet) through the strength of the RxNorm clinical drug (strength
table or normalised name, see ``strength.py``; flagged as derived); a per-kg dose through the
patient's body weight nearest in time (within the context's window); otherwise the resource is
reported. An infusion given by rate only lasts amount / rate; both are kept. R4/R4B and R5
field names are both read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from converters.fhir.context import (
    Context,
    Defer,
    MedicationInfo,
    Reject,
    Strength,
    as_received,
    is_pseudonymised,
    note,
)
from converters.fhir.refs import aliases_of, reference_key
from converters.fhir.sources import Entry
from converters.fhir.strength import UNITLESS, strength_from_name
from converters.fhir.timing import aware
from interop.schema import RXNORM, Dose, Drug, Transformation
from interop.schema.units import UnitError, convert, is_ucum, same_dimension

__all__ = ["convert_administration", "convert_request", "convert_statement", "index_medication"]

IV = {"47625008", "255560000", "IVINJ", "IVINJBOL", "IVINFUS", "IV"}
INFUSION = {"IVINFUS"}
ORAL = {"26643006", "PO", "ORAL"}
SC = {"34206005", "SQ", "SC"}
IM = {"78421000", "IM"}
INHAL = {"18679011000001101", "447694001", "IPINHL", "RESPINHL"}

ADMIN_STATUS = {
    "completed": None,
    "in-progress": "in-progress",
    "not-done": "skipped",
    "entered-in-error": "skipped",
    "stopped": "skipped",
    "on-hold": "skipped",
    "unknown": "skipped",
    "cancelled": "skipped",
}
REQUEST_OK = {"active", "completed", "on-hold", "stopped"}
REQUEST_INTENT = {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
STATEMENT_OK = {"active", "completed", "stopped", "on-hold", "recorded"}
PERIOD_HOURS = {"s": 1 / 3600, "min": 1 / 60, "h": 1.0, "d": 24.0, "wk": 168.0, "mo": 730.5, "a": 8766.0}


# -- Medication ------------------------------------------------------------------------------
def _ratio(value: Any) -> Strength | None:
    if not isinstance(value, dict):
        return None
    num, den = value.get("numerator") or {}, value.get("denominator") or {}
    try:
        n, d = float(num["value"]), float(den.get("value", 1))
    except (KeyError, TypeError, ValueError):
        return None
    nu, du = num.get("code") or num.get("unit"), den.get("code") or den.get("unit") or "1"
    if not nu or d <= 0 or n <= 0:
        return None
    return Strength(n, str(nu), d, str(du))


def medication_info(med: dict[str, Any], ctx: Context) -> MedicationInfo:
    """Codes and strength of a Medication resource (R4 and R5 shapes)."""
    codings = [c for c in (med.get("code") or {}).get("coding") or [] if isinstance(c, dict)]
    strength = None
    for ing in med.get("ingredient") or []:
        if not isinstance(ing, dict):
            continue
        item = ing.get("itemCodeableConcept") or (ing.get("item") or {}).get("concept") or {}
        if not codings:
            codings = [c for c in item.get("coding") or [] if isinstance(c, dict)]
        strength = strength or _ratio(ing.get("strength") or ing.get("strengthRatio"))
    codes, mapped = ctx.tables.drug_codings_for(codings)
    products = _products(codings)
    return (
        MedicationInfo(codes, strength, codes[0].display if codes else None, products)
        if mapped or codes
        else MedicationInfo((), strength, None, products)
    )


def _products(codings: list[dict[str, Any]]) -> tuple[tuple[str, str | None], ...]:
    """The RxNorm codes as received (clinical drugs carry the strength in their name)."""
    return tuple(
        (str(c["code"]), str(c["display"]) if isinstance(c.get("display"), str) else None)
        for c in codings
        if c.get("system") == RXNORM and c.get("code")
    )


def index_medication(res: dict[str, Any], ctx: Context, entry: Entry) -> None:
    info = medication_info(res, ctx)
    for key in aliases_of(res, entry.full_url, entry.aliases):
        ctx.medications[key] = info


def _medication(res: dict[str, Any], ctx: Context) -> MedicationInfo:
    concept = res.get("medicationCodeableConcept")
    ref_obj = res.get("medicationReference")
    r5 = res.get("medication")
    if isinstance(r5, dict):
        concept = concept or r5.get("concept")
        ref_obj = ref_obj or r5.get("reference")
    if isinstance(concept, dict):
        codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
        if not codings:
            _no_code(concept)
        codes, name = _codes(codings, ctx)
        return MedicationInfo(codes, None, name, _products(codings))
    ref = ref_obj.get("reference") if isinstance(ref_obj, dict) else None
    if not isinstance(ref, str):
        raise Reject("no medication code or reference", "medication[x]")
    if ref.startswith("#"):
        med = next(
            (c for c in res.get("contained") or [] if isinstance(c, dict) and f"#{c.get('id')}" == ref), None
        )
        if med is None:
            raise Reject("medication reference: no such contained resource", "medication[x]")
        info = medication_info(med, ctx)
    else:
        found = ctx.medications.get(reference_key(ref))
        if found is None:
            if ctx.final_pass:
                raise Reject("medication reference: no such Medication in the feed", "medication[x]")
            raise Defer("Medication not seen yet", "medication[x]")
        info = found
    if not info.codings:
        raise Reject("Medication has no code", "medication[x]")
    return info


def _no_code(concept: dict[str, Any]) -> None:
    raise Reject(f"medication without coding (text {concept.get('text')!r})", "medication[x]")


def _codes(codings: list[dict[str, Any]], ctx: Context) -> tuple[tuple[Any, ...], str | None]:
    codes, _ = ctx.tables.drug_codings_for(codings)
    if not codes:
        raise Reject("medication codings have no system or code", "medication[x]")
    return codes, codes[0].display


def _note_unmapped(info: MedicationInfo, ctx: Context, notes: list[Transformation]) -> None:
    mapped = any(c.system.endswith("rxnorm") and c.code in ctx.tables.names for c in info.codings)
    if not mapped:
        key = f"{info.codings[0].system}|{info.codings[0].code}"
        ctx.report.unmapped_codes[key] += 1
        notes.append(note("flag", f"drug code {key} not in the mapping tables"))
    else:
        notes.append(note("code-mapping", "drug -> RxNorm ingredient and ATC"))


# -- amounts -----------------------------------------------------------------------------------
def _amount(
    value: float,
    unit: str,
    info: MedicationInfo,
    pid: str,
    when: dt.datetime,
    ctx: Context,
    notes: list[Transformation],
) -> tuple[float, str]:
    """The dose in mg (or in its own UCUM amount unit when not a mass), or ``Reject``/``Defer``."""
    if value <= 0:
        raise Reject(f"impossible dose {value:g} {unit} (must be > 0)", "dose.value")
    if unit in UNITLESS:
        return _units_of_product(value, info, ctx, notes)
    original = unit
    if unit.endswith("/kg"):
        if not ctx.final_pass:
            raise Defer("per-kg dose: waits for every body weight", "dose")
        found = ctx.weight_at(pid, when)
        if found is None:
            raise Reject(
                f"per-kg dose ({unit}) but no body weight within "
                f"{ctx.weight_window.days} days of {when.isoformat()}",
                "dose.code",
            )
        kg, at = found
        value, unit = value * kg, unit[: -len("/kg")]
        notes.append(note("derivation", f"{original} x body weight {kg:g} kg measured {at.isoformat()}"))
        ctx.report.unit_conversions[f"{original} -> {unit} (x weight)"] += 1
    ucum = is_ucum(unit)
    if ucum and same_dimension(unit, "mg"):
        return _to_mg(value, unit, ctx, notes), "mg"
    s = info.strength
    if s is not None and (
        unit.lower() == s.denominator_unit.lower()
        or (ucum and is_ucum(s.denominator_unit) and same_dimension(unit, s.denominator_unit))
    ):
        per = (
            value if unit.lower() == s.denominator_unit.lower() else convert(value, unit, s.denominator_unit)
        )
        amount = per / s.denominator * s.numerator
        notes.append(
            note(
                "derivation",
                f"{value:g} {unit} x strength "
                f"{s.numerator:g} {s.numerator_unit}/{s.denominator:g} {s.denominator_unit}",
            )
        )
        ctx.report.unit_conversions[f"{unit} -> {s.numerator_unit} (x strength)"] += 1
        if is_ucum(s.numerator_unit) and same_dimension(s.numerator_unit, "mg"):
            return _to_mg(amount, s.numerator_unit, ctx, notes), "mg"
        return amount, s.numerator_unit
    if ucum and not same_dimension(unit, "mL"):
        return value, unit  # an amount unit that is not a mass ([iU], mmol, meq): kept as given
    why = "is not UCUM" if not ucum else "is a volume"
    raise Reject(f"dose unit {unit!r} {why} and the Medication gives no strength to resolve it", "dose.code")


def _product_strength(info: MedicationInfo, ctx: Context, notes: list[Transformation]) -> Strength:
    """Strength per unit of product: the Medication's, the strength table's, or the RxNorm name's."""
    s = info.strength
    if s is not None and s.denominator == 1 and s.denominator_unit in UNITLESS | {"TAB", "CAP"}:
        return s
    why = "no RxNorm clinical drug code"
    for code, display in info.products:
        row = ctx.tables.strengths.get(code)
        if row is not None:
            amount, unit, per, per_unit, table = row
            notes.append(
                note(
                    "derivation",
                    f"strength {amount:g} {unit}/{per:g} {per_unit} of RxNorm {code} from {table}",
                )
            )
            ctx.report.flags["dose strength from the strength table"] += 1
            return Strength(amount, unit, per, per_unit)
        if display:
            found, why = strength_from_name(display)
            if found is not None:
                notes.append(
                    note(
                        "derivation",
                        f"strength {found.numerator:g} {found.numerator_unit} {why} "
                        f"from the RxNorm name of {code} ({display})",
                    )
                )
                ctx.report.flags["dose strength from the RxNorm name"] += 1
                return found
        else:
            why = f"RxNorm {code} has no display and is not in the strength table"
    raise Reject(f"dose without a unit and no strength for the product: {why}", "dose.code")


def _units_of_product(
    value: float, info: MedicationInfo, ctx: Context, notes: list[Transformation]
) -> tuple[float, str]:
    """A unitless dose (1 = one tablet) times the product's strength."""
    s = _product_strength(info, ctx, notes)
    amount = value / s.denominator * s.numerator
    ctx.report.unit_conversions[f"units of product -> {s.numerator_unit} (x strength)"] += 1
    if is_ucum(s.numerator_unit) and same_dimension(s.numerator_unit, "mg"):
        return _to_mg(amount, s.numerator_unit, ctx, notes), "mg"
    return amount, s.numerator_unit


def _to_mg(value: float, unit: str, ctx: Context, notes: list[Transformation]) -> float:
    if unit == "mg":
        return value
    try:
        out = convert(value, unit, "mg")
    except UnitError as exc:
        raise Reject(exc.message, "dose.code") from exc
    notes.append(note("unit-conversion", f"{unit} -> mg"))
    ctx.report.unit_conversions[f"{unit} -> mg"] += 1
    return out


def _route(route: Any) -> str:
    codes = {str(c.get("code")).upper() for c in (route or {}).get("coding") or [] if isinstance(c, dict)}
    codes |= {str(c.get("code")) for c in (route or {}).get("coding") or [] if isinstance(c, dict)}
    if codes & INFUSION:
        return "iv-infusion"
    for names, out in (
        (IV, "iv"),
        (ORAL, "oral"),
        (SC, "subcutaneous"),
        (IM, "intramuscular"),
        (INHAL, "inhalation"),
    ):
        if codes & names:
            return out
    return "other"


def _rate_mg_h(dosage: dict[str, Any]) -> float | None:
    rq = dosage.get("rateQuantity")
    if isinstance(rq, dict) and rq.get("value") is not None:
        unit = str(rq.get("code") or rq.get("unit") or "")
        try:
            return (
                convert(float(rq["value"]), unit, "mg/h")
                if is_ucum(unit) and same_dimension(unit, "mg/h")
                else None
            )
        except (UnitError, ValueError, TypeError):
            return None
    ratio = _ratio(dosage.get("rateRatio"))
    if (
        ratio
        and is_ucum(ratio.numerator_unit)
        and same_dimension(ratio.numerator_unit, "mg")
        and is_ucum(ratio.denominator_unit)
        and same_dimension(ratio.denominator_unit, "h")
    ):
        return convert(ratio.numerator, ratio.numerator_unit, "mg") / convert(
            ratio.denominator, ratio.denominator_unit, "h"
        )
    return None


def _dose(
    res: dict[str, Any],
    ctx: Context,
    entry: Entry,
    pid: str,
    *,
    rtype: str,
    status: str,
    info: MedicationInfo,
    qty: dict[str, Any],
    start: dt.datetime,
    end: dt.datetime | None,
    route_json: Any,
    notes: list[Transformation],
    rate: float | None = None,
    interval_h: float | None = None,
    additional: int = 0,
) -> Dose:
    try:
        value_in = float(qty["value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Reject("dose without a value", "dose.value") from exc
    unit_in = str(qty.get("code") or qty.get("unit") or "")
    amount, unit = _amount(value_in, unit_in, info, pid, start, ctx, notes)
    route = _route(route_json)
    duration = (end - start).total_seconds() / 3600.0 if end and end > start else None
    if route == "iv":
        route = "iv-infusion" if duration or rate else "iv-bolus"
    if rate is not None and unit != "mg":
        rate = None
    if route != "iv-infusion":
        duration, rate = None, None
    elif duration is not None and rate is not None:
        if abs(amount / rate - duration) > 1e-6 * max(1.0, duration):
            notes.append(note("flag", f"rate {rate:g} mg/h dropped: disagrees with the period's duration"))
        rate = None
    if route == "iv-infusion" and duration is None and rate is not None:
        duration = amount / rate  # given by rate only: the infusion lasts amount / rate
        notes.append(note("derivation", f"duration {duration:g} h = {amount:g} {unit} / {rate:g} {unit}/h"))
    if route == "iv-infusion" and duration is not None and rate is None:
        rate = amount / duration
    _note_unmapped(info, ctx, notes)
    start = ctx.place_time(pid, start, notes, "start", res)
    kept = as_received(res) if is_pseudonymised(res) else None
    if kept is not None:
        value_in, unit_in = kept[0], kept[1] or ""
    return Dose(
        id=ctx.item_id(rtype, res, entry),
        drug=Drug(codes=info.codings, name=info.name),
        amount=amount,
        unit=unit,
        original_amount=value_in,
        original_unit=unit_in or None,
        route=route,  # type: ignore[arg-type]
        start=start,
        duration_h=duration,
        rate=rate,
        interval_h=interval_h,
        additional=additional,
        status=status,  # type: ignore[arg-type]
        provenance=ctx.provenance(rtype, res, entry, notes, ctx.encounter_of(res)),
    )


# -- the three resources ------------------------------------------------------------------------
def convert_administration(res: dict[str, Any], model: Any, ctx: Context, entry: Entry, pid: str) -> Dose:
    status = res.get("status")
    outcome = ADMIN_STATUS.get(str(status), "skipped")
    notes: list[Transformation] = []
    if outcome == "skipped":
        raise Reject(f"status {status}: not an administration that took place", "status", "skipped")
    if outcome == "in-progress":
        ctx.report.flags["in-progress administration"] += 1
        notes.append(note("flag", "administration in progress"))
    info = _medication(res, ctx)
    dosage = res.get("dosage") or {}
    qty = dosage.get("dose")
    if not isinstance(qty, dict):
        raise Reject("no dosage.dose", "dosage.dose")
    period = getattr(model, "effectivePeriod", None) or getattr(model, "occurencePeriod", None)
    start = aware(
        getattr(model, "effectiveDateTime", None)
        or getattr(model, "occurenceDateTime", None)
        or (period.start if period is not None else None),
        notes,
    )
    end = aware(period.end, notes) if period is not None and period.end is not None else None
    if start is None:
        raise Reject("no effective time", "effective[x]")
    return _dose(
        res,
        ctx,
        entry,
        pid,
        rtype="MedicationAdministration",
        status="administered",
        info=info,
        qty=qty,
        start=start,
        end=end,
        route_json=dosage.get("route"),
        notes=notes,
        rate=_rate_mg_h(dosage),
    )


def _timing(instr: dict[str, Any], notes: list[Transformation]) -> tuple[Any, float | None, int]:
    timing = instr.get("timing") or {}
    repeat = timing.get("repeat") or {}
    start = None
    events = timing.get("event") or []
    if events:
        start = events[0]
    elif isinstance(repeat.get("boundsPeriod"), dict):
        start = repeat["boundsPeriod"].get("start")
    interval = None
    try:
        if repeat.get("period") and repeat.get("periodUnit") in PERIOD_HOURS:
            interval = (
                float(repeat["period"])
                * PERIOD_HOURS[repeat["periodUnit"]]
                / float(repeat.get("frequency") or 1)
            )
    except (TypeError, ValueError, ZeroDivisionError):
        interval = None
    additional = 0
    if interval and isinstance(repeat.get("count"), int) and repeat["count"] > 1:
        additional = repeat["count"] - 1
    return start, (interval if interval and interval > 0 else None), additional


def _parse_time(value: Any, notes: list[Transformation]) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return aware(dt.date.fromisoformat(value), notes)
        return aware(dt.datetime.fromisoformat(value.replace("Z", "+00:00")), notes)
    except ValueError:
        return None


def _dose_quantity(instruction: dict[str, Any]) -> dict[str, Any] | None:
    """The first ``doseAndRate.doseQuantity`` of a dosage instruction (request or statement)."""
    return next(
        (
            dr.get("doseQuantity")
            for dr in instruction.get("doseAndRate") or []
            if isinstance(dr, dict) and isinstance(dr.get("doseQuantity"), dict)
        ),
        None,
    )


def convert_request(res: dict[str, Any], model: Any, ctx: Context, entry: Entry, pid: str) -> Dose:
    status, intent = res.get("status"), res.get("intent")
    if status not in REQUEST_OK:
        raise Reject(f"status {status}: not an order to keep", "status", "skipped")
    if intent not in REQUEST_INTENT:
        raise Reject(f"intent {intent}: a proposal or plan, not an order", "intent", "skipped")
    info = _medication(res, ctx)
    instructions = [i for i in res.get("dosageInstruction") or [] if isinstance(i, dict)]
    instr = instructions[0] if instructions else {}
    qty = _dose_quantity(instr)
    if qty is None:
        raise Reject(
            "order without a dose quantity (dosageInstruction.doseAndRate.doseQuantity)", "dosageInstruction"
        )
    notes: list[Transformation] = []
    when, interval, additional = _timing(instr, notes)
    start = _parse_time(when, notes) or aware(getattr(model, "authoredOn", None), notes)
    if start is None:
        raise Reject("order without timing start or authoredOn", "authoredOn")
    return _dose(
        res,
        ctx,
        entry,
        pid,
        rtype="MedicationRequest",
        status="ordered",
        info=info,
        qty=qty,
        start=start,
        end=None,
        route_json=instr.get("route"),
        notes=notes,
        interval_h=interval,
        additional=additional,
    )


def convert_statement(res: dict[str, Any], model: Any, ctx: Context, entry: Entry, pid: str) -> Dose:
    status = res.get("status")
    if status not in STATEMENT_OK:
        raise Reject(f"status {status}: not a medication taken", "status", "skipped")
    info = _medication(res, ctx)
    dosages = [d for d in res.get("dosage") or [] if isinstance(d, dict)]
    instr = dosages[0] if dosages else {}
    qty = _dose_quantity(instr)
    if qty is None:
        raise Reject("statement without a dose quantity (dosage.doseAndRate.doseQuantity)", "dosage")
    notes: list[Transformation] = []
    period = getattr(model, "effectivePeriod", None)
    start = aware(
        getattr(model, "effectiveDateTime", None)
        or (period.start if period is not None else None)
        or getattr(model, "dateAsserted", None),
        notes,
    )
    if start is None:
        raise Reject("statement without effective time or dateAsserted", "effective[x]")
    _, interval, additional = _timing(instr, notes)
    return _dose(
        res,
        ctx,
        entry,
        pid,
        rtype="MedicationStatement",
        status="reported",
        info=info,
        qty=qty,
        start=start,
        end=None,
        route_json=instr.get("route"),
        notes=notes,
        interval_h=interval,
        additional=additional,
    )
