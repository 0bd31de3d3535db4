"""The end-to-end demo: one synthetic patient through converter, registry and twin.

Everything is local and bundled: the registry is the embedded SQLite default under the
hub's home folder, the model and the FHIR bundle ship with the package.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from converters import convert_bundle_file, load_key
from converters.pseudonym import KEY_ENV, source_token
from interop.schema import ModelCard, parse_json
from interop.schema.record_store import RecordStore
from interop.settings import Settings
from interop.twin import bind_patient, load_model, simulate, simulate_observations
from interop.twin.plot import plot_concentrations
from interop.workflows.registry_session import registry_session

__all__ = ["DemoResult", "run_demo"]

MODEL_SBML = "gentamicin_1cmt.xml"
MODEL_CARD = "gentamicin_1cmt.card.json"
PATIENT_BUNDLE = "gentamicin_patient.json"


@dataclass(frozen=True)
class DemoResult:
    model_id: str
    model_version: int
    patient_id: str
    rows: list[dict[str, Any]]
    out_dir: Path
    record_path: Path
    report_path: Path
    plot_path: Path
    predictions_path: Path
    database_url: str


def _data(*parts: str) -> Path:
    return Path(str(files("interop").joinpath("data", *parts)))


def demo_key(settings: Settings) -> bytes:
    """The pseudonymisation key: ``$INTEROP_PSEUDONYM_KEY``, else one made once under home/keys."""
    if os.environ.get(KEY_ENV):
        return load_key()
    path = settings.home / "keys" / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return load_key(path)


def run_demo(settings: Settings) -> DemoResult:
    settings.home.mkdir(parents=True, exist_ok=True)
    out = settings.output_dir / "demo"
    out.mkdir(parents=True, exist_ok=True)

    # 1. Registry: register the bundled model and its card (identical content: same version).
    card = parse_json(ModelCard, _data("models", MODEL_CARD).read_text(), source=MODEL_CARD)
    with registry_session(settings) as registry:
        stored = registry.submit(_data("models", MODEL_SBML).read_text(), card, submitted_by="demo")
        stored = registry.get(stored.model_id, stored.version)  # read back by id and version

    # 2. Converter: the bundled FHIR R4 bundle becomes a pseudonymised PatientRecord.
    key = demo_key(settings)
    result = convert_bundle_file(_data("demo", PATIENT_BUNDLE), key)
    store = RecordStore(out)
    record = store.merge(result.records[0])  # the one record store: merged, written atomically
    record_path = store.path(record.patient.id)
    report_path = out / "conversion-report.json"
    report_path.write_text(result.report.to_json(hide=lambda s: source_token(key, s)))

    # 3. Twin: compile, bind covariates and doses through the card, simulate at the sample times.
    model = load_model(stored.sbml, stored.card)
    twin = bind_patient(model, record)
    predicted = simulate_observations(twin)
    rows = [
        {
            "time_h": o.time_h,
            "observable": o.observable,
            "observed": o.value,
            "predicted": float(p),
            "unit": next(x.unit for x in card.observables if x.id == o.observable),
        }
        for o, p in zip(twin.observations, predicted, strict=True)
    ]
    end = max(o.time_h for o in twin.observations) + 12.0
    grid = np.linspace(0.0, end, 400)
    curve = simulate(twin, grid).values[card.observables[0].id]
    plot_path = plot_concentrations(
        twin,
        grid,
        {"a priori (population) prediction": curve},
        out / "concentration.png",
        title=f"{card.title}\npatient {record.patient.id[:12]}…",
    )
    predictions_path = out / "predictions.json"
    predictions_path.write_text(
        json.dumps(
            {
                "model": f"{stored.model_id}@{stored.version}",
                "patient": record.patient.id,
                "doses": [
                    {
                        "time_h": d.time_h,
                        "amount": d.amount,
                        "route": d.input.route,
                        "duration_h": d.duration_h,
                    }
                    for d in twin.doses
                ],
                "covariates": {
                    k: {
                        "times_h": v.times_h,
                        "values": v.values,
                        "value_at_origin": v.at(0.0),
                        "changes": v.changes(),
                    }
                    for k, v in twin.covariates.items()
                },
                "rows": rows,
            },
            indent=2,
        )
    )
    return DemoResult(
        stored.model_id,
        stored.version,
        record.patient.id,
        rows,
        out,
        record_path,
        report_path,
        plot_path,
        predictions_path,
        settings.database_url,
    )
