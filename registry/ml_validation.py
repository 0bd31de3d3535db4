"""The validation pipeline of an ML model version (format onnx): the same report as SBML models.

    onnx       the graph loads safely: bounded size and node count, standard op-sets and
               operators only, no model-local functions, no external data (the archive's was
               inlined at submission), the ONNX checker with shape inference    onnx
    card       the graph's input and output match the card: one float input [N, n_features],
               the named output (and column) exists and is numeric             onnx
    run        onnxruntime loads the model and predicts one row                onnxruntime
    reproduce  every reference case of the card within its tolerance (1e-6)    onnxruntime

A stage after a failed one is skipped; the report is stored and shown like an SBML model's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from interop.errors import InteropError, MissingExtraError
from interop.schema import MLCard
from interop.schema.onnx_model import OnnxFacts, OnnxPredictor, check_io, inspect_onnx, reference_failures
from registry.validation import Issue, StageResult, ValidationReport

__all__ = ["ML_STAGES", "validate_ml"]

ML_STAGES = ("onnx", "card", "run", "reproduce")


def validate_ml(onnx: bytes, card: MLCard, *, source: str | None = None) -> ValidationReport:
    """Run every stage over the ONNX bytes and their card."""
    stages: list[StageResult] = []
    state: dict[str, object] = {}

    def run(name: str, fn: Callable[[], list[Issue]]) -> None:
        if stages and stages[-1].status in ("failed", "skipped"):
            stages.append(StageResult(name, "skipped", (Issue("info", "an earlier stage failed"),)))
            return
        t0 = time.perf_counter()
        try:
            issues = fn()
        except MissingExtraError:
            raise
        except InteropError as exc:
            issues = [Issue("error", exc.message, name)]
        failed = any(i.severity == "error" for i in issues)
        stages.append(
            StageResult(name, "failed" if failed else "passed", tuple(issues), time.perf_counter() - t0)
        )

    def load() -> list[Issue]:
        _, facts = inspect_onnx(onnx, source=source)
        state["facts"] = facts
        ops = ", ".join(f"{d} {v}" for d, v in sorted(facts.opsets.items()))
        return [
            Issue(
                "info", f"{facts.n_nodes} nodes, op-sets {ops}, produced by {facts.producer or '?'}", "onnx"
            )
        ]

    def card_stage() -> list[Issue]:
        facts = state["facts"]
        assert isinstance(facts, OnnxFacts)
        return [Issue("error", p, "io") for p in check_io(facts, card)]

    def run_stage() -> list[Issue]:
        p = OnnxPredictor(onnx, card)
        state["predictor"] = p
        row = np.array([[card.reference_cases[0].inputs[n] for n in card.feature_names]])
        value = float(p.predict(row)[0])
        if not np.isfinite(value):
            return [Issue("error", f"the prediction for reference case 0 is {value}", "run")]
        return [
            Issue(
                "info", f"onnxruntime predicts {value:.6g} {card.predicts.unit} for reference case 0", "run"
            )
        ]

    def reproduce() -> list[Issue]:
        p = state["predictor"]
        assert isinstance(p, OnnxPredictor)
        fails = reference_failures(p)
        if fails:
            return [Issue("error", f, "reference") for f in fails]
        return [Issue("info", f"{len(card.reference_cases)} reference case(s) reproduced", "reference")]

    run("onnx", load)
    run("card", card_stage)
    run("run", run_stage)
    run("reproduce", reproduce)
    return ValidationReport(tuple(stages))
