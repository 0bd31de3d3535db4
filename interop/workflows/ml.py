"""ML model use cases: export a fitted scikit-learn pipeline to ONNX with its card, and resolve the
ML models a hybrid card names from the registry.

Export (``interop ml export``): skl2onnx converts the pipeline (float input ``[N, n_features]``,
classifier probabilities as a plain tensor, no ZipMap); the expected outputs of the card's
reference cases are computed with onnxruntime on the exported graph (so the registry reproduces
them to 1e-6) and the largest difference from scikit-learn's own predictions on those rows is
reported (float32 arithmetic in the graph). Without a card template a skeleton card is written,
with every place a partner must fill marked ``TODO``. A pickle or joblib file is Python code:
loading one runs whatever it contains, so it is refused unless the caller says it trusts the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interop.errors import InteropError, ModelError, SchemaError
from interop.schema import MLCard, ModelCard, parse, parse_json
from interop.schema.model_card import ResolvedML
from interop.schema.onnx_model import OnnxPredictor, inspect_onnx, require
from interop.settings import Settings
from registry import Registry

__all__ = ["ExportResult", "export_sklearn", "load_estimator", "resolve_ml_links"]

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    card_path: Path
    archive_path: Path | None  # None: only a skeleton card (fill it, then `interop ml pack`)
    max_abs_difference: float | None  # ONNX vs scikit-learn on the reference rows
    n_features: int


def load_estimator(path: Path, *, trusted: bool) -> Any:
    """A fitted estimator from a pickle/joblib file; refused unless ``trusted`` (pickles run code)."""
    if not trusted:
        raise InteropError(
            "a pickle or joblib file is Python code and runs when loaded: pass --trust only for a file "
            "you made or fully trust",
            source=str(path),
        )
    if not path.is_file():
        raise InteropError(f"no model file {path}", source=str(path))
    joblib = require("joblib", "loading a scikit-learn model")
    try:
        return joblib.load(path)
    except Exception as exc:  # unpickling raises anything the file's code raises
        raise ModelError(
            f"cannot load the fitted model: {type(exc).__name__}: {exc}", source=str(path)
        ) from exc


def _is_classifier(estimator: Any) -> bool:
    return hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")


def to_onnx(estimator: Any, n_features: int) -> bytes:
    """The estimator (or pipeline) as ONNX bytes: input ``X`` float [N, n_features]."""
    skl2onnx = require("skl2onnx", "exporting a scikit-learn model")
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(estimator): {"zipmap": False}} if _is_classifier(estimator) else None
    try:
        onx = skl2onnx.convert_sklearn(
            estimator,
            initial_types=[("X", FloatTensorType([None, n_features]))],
            target_opset=TARGET_OPSET,
            options=options,
        )
    except Exception as exc:  # skl2onnx raises RuntimeError/NotImplementedError for unsupported parts
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"skl2onnx cannot convert {type(estimator).__name__}: {first[:300]}") from exc
    return bytes(onx.SerializeToString())


def _skeleton(n: int, names: list[str], classifier: bool, output: str) -> dict[str, Any]:
    todo_source = {"measurement": {"system": "http://loinc.org", "code": "TODO"}, "unit": "TODO"}
    return {
        "id": "TODO-model-id",
        "version": "1",
        "title": "TODO",
        "institution": "TODO",
        "predicts": {"kind": "probability" if classifier else "TODO", "name": "TODO", "unit": "TODO"},
        "output": {"name": output, "column": 1 if classifier else 0, "transform": "identity"},
        "features": [{"name": name, "source": todo_source, "missing": "refuse"} for name in names[:n]],
        "training": {"population": "TODO", "n_subjects": 1, "sites": ["TODO"]},
        "intended_use": "TODO",
        "limits": [],
        "reference_cases": [],
    }


def export_sklearn(
    model_path: Path,
    out_dir: Path,
    *,
    trusted: bool,
    card_template: Path | None = None,
    reference_rows: np.ndarray | None = None,
) -> ExportResult:
    """``model.onnx`` and ``ml-card.json`` in ``out_dir``; with a card template (every field but the
    reference cases' expected values), also ``<id>.zip``, the archive ``registry submit`` takes."""
    estimator = load_estimator(model_path, trusted=trusted)
    n = int(getattr(estimator, "n_features_in_", 0))
    if n <= 0:
        raise ModelError("the estimator is not fitted (no n_features_in_)", source=str(model_path))
    names = [str(x) for x in getattr(estimator, "feature_names_in_", [f"x{i}" for i in range(n)])]
    onnx_bytes = to_onnx(estimator, n)
    data, facts = inspect_onnx(onnx_bytes, source=str(model_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    onnx_path.write_bytes(data)
    card_path = out_dir / "ml-card.json"
    output = facts.outputs[-1][0] if _is_classifier(estimator) else facts.outputs[0][0]
    if card_template is None:
        card_path.write_text(
            json.dumps(_skeleton(n, names, _is_classifier(estimator), output), indent=2) + "\n"
        )
        return ExportResult(onnx_path, card_path, None, None, n)
    template = json.loads(card_template.read_text())
    template.setdefault("output", {}).setdefault("name", output)
    features = [f["name"] for f in template.get("features", [])]
    if len(features) != n:
        raise SchemaError(
            f"the card template lists {len(features)} features, the model takes {n}",
            source=str(card_template),
        )
    if reference_rows is None:
        cases = template.get("reference_cases") or []
        if not cases:
            raise SchemaError(
                "give reference rows (--reference) or reference_cases inputs in the template",
                source=str(card_template),
            )
        reference_rows = np.array([[float(c["inputs"][f]) for f in features] for c in cases])
    rows = np.asarray(reference_rows, dtype=float)
    template["reference_cases"] = [
        {"inputs": dict(zip(features, map(float, r), strict=True)), "expected": 0.0} for r in rows
    ]
    draft = parse(MLCard, template, source=str(card_template))
    got = OnnxPredictor(data, draft).predict(rows)
    template["reference_cases"] = [
        {**c, "expected": float(v)} for c, v in zip(template["reference_cases"], got, strict=True)
    ]
    card = parse(MLCard, template, source=str(card_template))
    skl = _sklearn_prediction(estimator, rows, card)
    diff = float(np.max(np.abs(skl - got))) if skl is not None else None
    card_path.write_text(card.model_dump_json(indent=2) + "\n")
    from registry.formats.onnx import pack

    archive = out_dir / f"{card.id}.zip"
    archive.write_bytes(pack(data, card))
    return ExportResult(onnx_path, card_path, archive, diff, n)


def _sklearn_prediction(estimator: Any, rows: np.ndarray, card: MLCard) -> np.ndarray | None:
    try:
        if _is_classifier(estimator):
            y = np.asarray(estimator.predict_proba(rows))[:, card.output.column]
        else:
            y = np.asarray(estimator.predict(rows), dtype=float).reshape(len(rows), -1)[:, card.output.column]
    except Exception:  # a pipeline fitted on a DataFrame may refuse a bare array: no comparison then
        return None
    return np.exp(y) if card.output.transform == "exp" else y


def resolve_ml_links(card: ModelCard, registry: Registry | Settings) -> ModelCard:
    """``card`` with every ML model it names loaded from the registry (bytes verified by hash;
    a registry or the settings naming one): the twin, cohort and validation code then run them
    wherever the card goes. Only validated or published ML versions take part."""
    if not card.ml_models:
        return card
    if isinstance(registry, Settings):
        from interop.workflows.registry_session import registry_session

        with registry_session(registry) as reg:
            return resolve_ml_links(card, reg)
    links = []
    for link in card.ml_models:
        stored = registry.get(link.model_id, link.model_version)
        if stored.ml_card is None or stored.artefact is None:
            raise ModelError(
                f"{link.model} named in {card.id}'s ml_models is not an ML model (format {stored.format})",
                source=card.id,
                field="ml_models",
            )
        if stored.status not in ("validated", "published"):
            raise ModelError(
                f"ML model {link.model} is {stored.status}: validate it before a twin uses it",
                source=card.id,
                field="ml_models",
            )
        resolved = ResolvedML(
            version=stored.version,
            sha256=hashlib.sha256(stored.artefact).hexdigest(),
            card=json.loads(stored.ml_card.model_dump_json()),
            onnx_base64=base64.b64encode(stored.artefact).decode("ascii"),
        )
        links.append({**link.model_dump(), "resolved": resolved.model_dump()})
    return parse(ModelCard, {**card.model_dump(), "ml_models": links}, source=card.id)


def read_card(path: Path) -> MLCard:
    return parse_json(MLCard, path.read_text(), source=str(path))
