"""The examples in the main entry points' docstrings run, on the model and patient shipped in
``interop/data``: ``bind_patient``, ``estimate_map``, ``forecast``, ``recommend_dose``,
``Registry.submit`` and ``convert_bundle``.

The twin examples after ``bind_patient`` start from its ``twin`` (and the MAP ``fit``), built here
once as its own example builds them, so each docstring stays short.
"""

from __future__ import annotations

import doctest
import importlib
import json
from importlib.resources import files
from typing import Any

import pytest

from converters import convert_bundle
from interop.schema import ModelCard, parse_json
from interop.twin import bind_patient, estimate_map, load_model

ENTRY_POINTS = [
    ("interop.twin.binding", "bind_patient"),
    ("interop.twin.estimate", "estimate_map"),
    ("interop.twin.forecast", "forecast"),
    ("interop.twin.recommend", "recommend_dose"),
    ("registry.service", "Registry.submit"),
    ("converters.fhir.convert", "convert_bundle"),
]


@pytest.fixture(scope="module")
def demo_globs() -> dict[str, Any]:
    """``twin`` and ``fit``: the demo patient bound to the gentamicin model, as the examples say."""
    data = files("interop") / "data"
    card = parse_json(ModelCard, (data / "models/gentamicin_1cmt.card.json").read_text())
    model = load_model((data / "models/gentamicin_1cmt.xml").read_text(), card)
    bundle = json.loads((data / "demo/gentamicin_patient.json").read_text())
    twin = bind_patient(model, convert_bundle(bundle, b"secret key").records[0])
    return {"twin": twin, "fit": estimate_map(twin)}


@pytest.mark.parametrize(("module_name", "qualname"), ENTRY_POINTS)
def test_docstring_example_runs(module_name: str, qualname: str, demo_globs: dict[str, Any]) -> None:
    module = importlib.import_module(module_name)
    name = f"{module_name}.{qualname}"
    tests = [t for t in doctest.DocTestFinder().find(module, extraglobs=demo_globs) if t.name == name]
    assert len(tests) == 1 and tests[0].examples, f"{name} has no docstring example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(tests[0])
    result = runner.summarize(verbose=False)
    assert result.attempted == len(tests[0].examples) and result.failed == 0
