"""PharmML -> (SBML, model card): the format plug-in's ``detect`` and ``load``.

A conversion reads everything first, collecting every problem (unsupported element, dangling
reference, missing value) with its XML path, and raises them together as one
:class:`PharmMLError` before any SBML is written: nothing is half-converted.

Decisions where PharmML is silent: time is in hours (the card's only time unit); dose amounts are
in ``mg`` and observables unitless unless ``units`` says otherwise; a dose mapped to a derivative
variable is oral when the variable is called like a gut or depot compartment, intravenous
otherwise; a population parameter without a value anywhere in the file is refused unless
``values`` supplies it; categories of a categorical covariate are coded as the dataset's
``CategoryMapping`` says, else 0, 1, ... in declaration order, and female/male categories bind
to the patient's sex. ``reference_outputs`` (independent solutions the caller has) go on the card,
so the registry's reproduction check can run them. Dataset-defined doses, dose times, regressors,
priors, occasions and the other rules are listed in docs/pharmml-import.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

from interop.errors import SchemaError
from interop.schema import (
    Coding,
    DosingInput,
    ModelCard,
    Observable,
    RandomEffects,
    ReferenceDose,
    ReferenceOutput,
    ResidualError,
    model_id_from,
    parse,
)
from interop.schema.units import is_ucum, same_dimension
from registry.formats.pharmml.card import (
    build_covariates,
    build_random_effects,
)
from registry.formats.pharmml.dataset import dataset_variables, dose_variable_route, occasion_effects
from registry.formats.pharmml.design import (
    ColumnMapping,
    TrialDose,
    read_column_mappings,
    read_trial_doses,
    read_values,
)
from registry.formats.pharmml.document import (
    Document,
    PharmMLError,
    Problem,
    Problems,
    child,
    local,
    namespace_version,
    parse_document,
    xml_path,
)
from registry.formats.pharmml.errormodel import build_residual_error
from registry.formats.pharmml.macros import DosingSpec, expand_macros
from registry.formats.pharmml.maths import Num, Unsupported, symbols
from registry.formats.pharmml.reader import ReadModel, read_model
from registry.formats.pharmml.sbml import write_sbml
from registry.formats.pharmml.values import apply_values, numeric_env, with_constants

__all__ = ["Conversion", "convert", "detect", "load"]

log = logging.getLogger(__name__)

PHARMML_DRUG = "http://www.pharmml.org/model"
_ORAL_NAME = re.compile(r"(gut|depot|abs|^ad\d*$|^a_?d$)", re.I)


@dataclass(frozen=True)
class Conversion:
    """A converted PharmML model, with what the card cannot hold."""

    sbml: str
    card: ModelCard
    pharmml_version: str
    trial_doses: tuple[ReferenceDose, ...] = ()
    column_mappings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def detect(raw: bytes) -> bool:
    """True when ``raw`` is a PharmML document (any namespace version; load checks support)."""
    head = raw[:4096]
    if b"pharmml.org/pharmml/" not in head and b"PharmML" not in head:
        return False
    return namespace_version(raw) is not None


def load(
    raw: bytes,
    *,
    source: str | None = None,
    values: Mapping[str, float] | None = None,
    units: Mapping[str, str] | None = None,
    drug: Coding | None = None,
) -> tuple[str, ModelCard]:
    """SBML text and model card of a PharmML document (raises PharmMLError, a ModelError)."""
    result = convert(raw, source=source, values=values, units=units, drug=drug)
    for w in result.warnings:
        log.warning("%s: %s", source or "PharmML", w)
    return result.sbml, result.card


def _model_id(source: str | None, root_id: str | None, name: str) -> str:
    return model_id_from(PurePath(source).stem if source else (root_id or name or "pharmml-model"))


def _text(root, name: str) -> str:  # type: ignore[no-untyped-def]
    el = child(root, name)
    return " ".join((el.text or "").split()).strip('"') if el is not None else ""


def convert(
    raw: bytes,
    *,
    source: str | None = None,
    values: Mapping[str, float] | None = None,
    units: Mapping[str, str] | None = None,
    drug: Coding | None = None,
    institution: str | None = None,
    reference_outputs: Sequence[ReferenceOutput] = (),
) -> Conversion:
    """Convert a PharmML document; ``values`` fill or override parameter values by symbol name,
    ``units`` give UCUM units by observable id (and ``"dose"`` for amounts)."""
    doc = parse_document(raw, source=source)
    problems = Problems(source)
    warnings: list[str] = []
    model = read_model(doc, problems)
    dosing_specs = expand_macros(model, problems, warnings)
    table = model.table
    steps_values = read_values(doc, table, problems)
    trial = read_trial_doses(doc, table, problems, warnings)
    mappings = read_column_mappings(doc, table, problems)
    apply_values(model, steps_values, values or {}, problems)
    env = numeric_env(model)
    redirect = dataset_variables(model, mappings, trial, warnings)
    _check_definitions(model, problems)
    dosing_specs += _dataset_dosing(model, mappings, trial, dosing_specs, problems, redirect)
    if not dosing_specs and not problems.items:  # otherwise likely a consequence of those
        problems.add(
            doc.root,
            "no dose input: no PK-macro administration, TrialDesign dose "
            "or dataset dose-column mapping names a model variable",
        )
    residuals = []
    random_effects = None
    try:
        occasions, occasion_covariate = occasion_effects(doc, model, mappings, warnings)
        random_effects = build_random_effects(
            model.etas,
            model.correlations,
            with_constants(model, env),
            warnings,
            occasions,
            occasion_covariate,
        )
    except Unsupported as exc:
        problems.add(exc.element, exc.message)
    unvalued = {
        p.id for p in model.params.values() if p.kind == "population" and p.value is None and p.rule is None
    }
    error_env = with_constants(model, env)
    for obs in model.observations:
        if symbols(obs.error) & unvalued:
            continue  # its missing values are reported already
        try:
            residuals.append(build_residual_error(obs, error_env, model, warnings))
        except Unsupported as exc:
            problems.add(exc.element, exc.message)
    mdef = child(doc.root, "ModelDefinition")
    if mdef is not None and child(mdef, "ObservationModel") is None:
        problems.add(mdef, "no observation model")
    _check_units(units or {}, model, dosing_specs, problems)
    warnings[:0] = model.table.notes  # references resolved leniently, first
    problems.raise_if_any()
    assert random_effects is not None

    units = dict(units or {})
    title = _text(doc.root, "Name") or _model_id(source, doc.root.get("id"), "")
    model_id = _model_id(source, doc.root.get("id"), title)
    drug = drug or Coding(system=PHARMML_DRUG, code=model_id, display=title)
    inputs = _dosing_inputs(dosing_specs, units.get("dose", "mg"), warnings)
    observables = tuple(
        Observable(
            id=o.id,
            sbml=o.output.name if hasattr(o.output, "name") else "",
            unit=units.get(o.id, "1"),
            analyte=drug,
        )
        for o in model.observations
    )
    for o in model.observations:
        if o.id not in units:
            warnings.append(f"PharmML gives no unit for observable {o.id}: the card says '1'")
    description = " ".join(
        filter(
            None,
            [
                _text(doc.root, "Description"),
                f"Converted from PharmML {doc.written_version} by digphat-interop; time in hours.",
                ("Notes: " + "; ".join(warnings) + ".") if warnings else "",
            ],
        )
    )
    try:
        card = _card(model_id, title, description, drug, institution, doc, inputs, observables,
                     model, random_effects, residuals, reference_outputs, source)  # fmt: skip
        card = _dataset_compartments(card, mappings, dosing_specs)
    except SchemaError as exc:  # a value the card refuses (e.g. a bioavailability above 1)
        raise PharmMLError([Problem("/PharmML", None, f"model card: {exc.message}")], source=source) from exc
    sbml_id = re.sub(r"[^A-Za-z0-9_]", "_", model_id)
    sbml_id = sbml_id if re.match(r"[A-Za-z_]", sbml_id) else f"m_{sbml_id}"
    while sbml_id in model.params:  # the model id shares SBML's id space with the parameters
        sbml_id = f"{sbml_id}_model"
    sbml = write_sbml(
        sbml_id,
        title,
        list(model.params.values()),
        f"Converted from PharmML {doc.written_version} ({source or 'bytes'}) by digphat-interop.",
    )
    return Conversion(
        sbml=sbml,
        card=card,
        pharmml_version=doc.written_version,
        trial_doses=_reference_doses(trial, dosing_specs, redirect, card, warnings),
        column_mappings={m.column: tuple(m.symbols) + tuple(f"adm{a}" for a in m.adms) for m in mappings},
        warnings=tuple(warnings),
    )


def _check_units(
    units: Mapping[str, str], model: ReadModel, specs: list[DosingSpec], problems: Problems
) -> None:
    """Units given for a conversion are UCUM, name an observable (or ``dose``), and doses are
    amounts (mass or substance), reported at the element they would apply to."""
    observations = {o.id: o for o in model.observations}
    for key, unit in units.items():
        if key != "dose" and key not in observations:
            problems.items.append(Problem(f"units[{key!r}]", None, "no observable of that id"))
            continue
        element = observations[key].element if key in observations else None
        path, line = (
            (xml_path(element), element.sourceline)
            if element is not None
            else (specs[0].source if specs else "/PharmML", None)
        )
        if not is_ucum(unit):
            problems.items.append(Problem(path, line, f"unit {unit!r} for {key} is not UCUM"))
        elif key == "dose" and not (same_dimension(unit, "mg") or same_dimension(unit, "mol")):
            problems.items.append(
                Problem(
                    path,
                    line,
                    f"dose unit {unit!r} is not an amount (mass or substance): the dose targets hold amounts",
                )
            )


def _card(
    model_id: str,
    title: str,
    description: str,
    drug: Coding,
    institution: str | None,
    doc: Document,
    inputs: list[DosingInput],
    observables: tuple[Observable, ...],
    model: ReadModel,
    random_effects: RandomEffects,
    residuals: list[ResidualError | None],
    reference_outputs: Sequence[ReferenceOutput],
    source: str | None,
) -> ModelCard:
    covariates = build_covariates([(c.id, c.reference, model.categories.get(c.id)) for c in model.covariates])
    return parse(
        ModelCard,
        {
            "id": model_id,
            "title": title,
            "description": description,
            "drugs": [drug.model_dump()],
            "institution": institution or doc.root.get("implementedBy") or "unspecified",
            "dosing": [i.model_dump() for i in inputs],
            "observables": [o.model_dump() for o in observables],
            "covariates": [c.model_dump() for c in covariates],
            "random_effects": random_effects.model_dump(),
            "residual_error": [r.model_dump() for r in residuals if r is not None],
            "reference_outputs": [r.model_dump() for r in reference_outputs],
        },
        source=source,
    )


def _dataset_compartments(
    card: ModelCard, mappings: list[ColumnMapping], specs: list[DosingSpec]
) -> ModelCard:
    """The card's ``compartments`` when the dataset's CMT/ADM values are not the administrations'
    numbers (a ``TargetMapping`` from data symbol 10 to adm 1, say): an event table from the
    model's own dataset then reaches each administration (its first route; RATE makes a bolus an
    infusion). Left unset when the values are the numbers (the default mapping does that)."""
    pairs = {d: a for m in mappings if m.carries_doses for d, a in m.data_adms.items()}
    if all(d == a for d, a in pairs.items()):
        return card
    doses = []
    for value, adm in sorted(pairs.items()):
        spec = next((s for s in specs if s.adm == adm), None)
        if spec is None or value < 1:
            continue  # no PK-macro administration of that number: reported already
        ids = card.administrations(spec.route)
        doses.append({"cmt": value, "route": spec.route, "adm": adm if adm in ids else None})
    return card.replace(compartments={"doses": doses, "levels": []}) if doses else card


def _check_definitions(model: ReadModel, problems: Problems) -> None:
    for p in model.params.values():
        if p.kind == "variable" and p.rule is None:
            problems.items.append(Problem(p.path, p.line, f"variable {p.id!r} has no definition"))


def _dataset_dosing(
    model: ReadModel,
    mappings: list[ColumnMapping],
    trial: list[TrialDose],
    specs: list[DosingSpec],
    problems: Problems,
    redirect: Mapping[str, str],
) -> list[DosingSpec]:
    """Dosing inputs for dose targets that are model variables (not PK-macro administrations);
    ``redirect`` sends a dose variable's doses to the state it initialises."""
    targets: list[str] = [d.target for d in trial if d.target is not None]
    for m in mappings:
        if m.carries_doses:
            targets += m.symbols
    targets = [redirect.get(t, t) for t in targets]
    adm_of = {redirect.get(t, t): a for m in mappings for t, a in m.symbol_adms.items()}
    adms = {s.adm for s in specs}
    for d in trial:
        if d.adm is not None and d.adm not in adms:
            problems.items.append(Problem(d.path, None, f"no PK-macro administration adm={d.adm}"))
    for m in mappings:
        for a in m.adms:
            if a not in adms:
                problems.items.append(
                    Problem(f"ColumnMapping {m.column}", None, f"no PK-macro administration adm={a}")
                )
    out: list[DosingSpec] = []
    known = {s.target for s in specs}
    for t in dict.fromkeys(targets):
        if t in known:
            continue
        param = model.params.get(t)
        if param is None or param.kind != "state":
            problems.items.append(
                Problem(
                    param.path if param else "/PharmML/TrialDesign",
                    param.line if param else None,
                    f"dose target {t!r} is not a derivative variable",
                )
            )
            continue
        adm = adm_of.get(t)
        if param.rate == Num(0.0) and local(param.element) == "Variable":  # a dose-amount variable
            out.append(DosingSpec(dose_variable_route(model), t, adm=adm, source=param.path))
        elif _ORAL_NAME.search(t):
            out.append(DosingSpec("oral", t, adm=adm, source=param.path))
        else:
            out += [
                DosingSpec("iv-bolus", t, adm=adm, source=param.path),
                DosingSpec("iv-infusion", t, adm=adm, source=param.path),
            ]
        known.add(t)
    return out


def _priority(s: DosingSpec) -> int:
    """IV macros decide the IV routes, absorption macros the oral one; guesses from names come last."""
    if "/IV" in s.source:
        return 0 if s.route.startswith("iv-") else 1
    if any(f"/{m}" in s.source for m in ("Oral", "Absorption", "Depot")):
        return 0 if s.route == "oral" else 1
    return 2


def _dosing_inputs(specs: list[DosingSpec], unit: str, warnings: list[str]) -> list[DosingInput]:
    """One card input per distinct administration of each route (target, bioavailability, lag,
    duration); a route given in several places keeps each one's administration id (``adm``: the
    macro's, or the dataset's CMT/ADM value), the first (by macro before name guess, then file
    order) being the route's primary input. An administration the id cannot tell apart is refused."""
    out: list[DosingInput] = []
    clashes: list[Problem] = []
    ordered = sorted(specs, key=_priority)  # stable: file order within a priority
    for route in dict.fromkeys(s.route for s in ordered):
        mine = [s for s in ordered if s.route == route]
        best = _priority(mine[0])
        places: dict[tuple[str, float | str, float | str | None, str | None], list[DosingSpec]] = {}
        for s in mine:
            key = (s.target, s.bioavailability, s.lag, s.duration_parameter)
            if _priority(s) > best:
                if s.target not in {k[0] for k in places}:
                    warnings.append(
                        f"{route} into {s.target} (guessed from its name) is not in the card: "
                        f"the dosing macro sends {route} doses into {mine[0].target}"
                    )
                continue
            places.setdefault(key, []).append(s)
        several = len(places) > 1
        taken: dict[int, DosingSpec] = {}
        for group in places.values():
            s = group[0]
            adm = next((g.adm for g in group if g.adm is not None), None)
            if several:
                other = next(g[0] for g in places.values() if g is not group)
                if adm is None or (adm in taken and taken[adm].target != s.target):
                    why = (
                        "no administration id (adm, or the dataset's CMT/ADM value) tells it from the one "
                        f"into {other.target}"
                        if adm is None
                        else f"administration {adm} also names the one into {taken[adm].target}"
                    )
                    clashes.append(
                        Problem(
                            s.source or "/PharmML",
                            None,
                            f"{route} administration into {s.target}: {why}",
                        )
                    )
                    continue
                taken[adm] = s
            out.append(
                DosingInput(
                    route=route,  # type: ignore[arg-type]
                    target=s.target,
                    amount_unit=unit,  # type: ignore[arg-type]
                    bioavailability=s.bioavailability,
                    lag_time_h=s.lag,
                    duration_parameter=s.duration_parameter,
                    adm=adm if several else None,
                )
            )
    if clashes:
        raise PharmMLError(clashes)
    return out


def _reference_doses(
    trial: list[TrialDose],
    specs: list[DosingSpec],
    redirect: Mapping[str, str],
    card: ModelCard,
    warnings: list[str],
) -> tuple[ReferenceDose, ...]:
    """The TrialDesign's doses as reference doses; one into a route's other than primary input names
    that input's administration id (one into no input of its route is left out and warned)."""
    out = []
    for d in trial:
        target = redirect.get(d.target, d.target) if d.target is not None else None
        spec = next(
            (
                s
                for s in specs
                if (d.adm is not None and s.adm == d.adm) or (target is not None and s.target == target)
            ),
            None,
        )
        if spec is None or d.amount is None:
            continue
        route = spec.route
        if route.startswith("iv-"):
            route = "iv-infusion" if d.duration_h else "iv-bolus"
        adm = None  # the route's primary input, else the administration that reaches the target
        if spec.target not in {i.target for i in card.dosing_for(route)}:
            adm = next((i.adm for i in card.dosing if i.route == route and i.target == spec.target), None)
            if adm is None:
                warnings.append(f"{d.path}: a dose into {spec.target} ({route}) is not a reference dose")
                continue
        for t in d.times_h:
            out.append(
                ReferenceDose(
                    route=route,
                    amount=d.amount,
                    time_h=t,  # type: ignore[arg-type]
                    duration_h=d.duration_h if route == "iv-infusion" else None,
                    adm=adm,
                )
            )
    return tuple(out)
