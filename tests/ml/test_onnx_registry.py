"""ONNX models in the registry: submission of the archive, the validation stages (stored and shown
like SBML stages), search by predicted quantity / drug / feature, RDF, and what is refused.

The models are fitted here and exported by the real skl2onnx path; onnx, onnxruntime and the
registry (SQLite, and PostgreSQL where reachable) are real.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from interop.errors import InteropError, MissingExtraError, ModelError, RegistryError
from interop.schema import MLCard, parse
from interop.schema.onnx_model import inspect_onnx
from interop.workflows.ml import ExportResult, export_sklearn
from registry import Registry
from registry.formats.onnx import CARD_ENTRY, load_ml, pack
from registry.formats.sbml import InvalidModelError
from registry.search import SearchQuery
from tests.clirun import invoke
from tests.ml.conftest import TEMPLATE, fit_toy


def _archive(result: ExportResult) -> bytes:
    assert result.archive_path is not None
    return result.archive_path.read_bytes()


def test_export_writes_model_card_and_archive_reproducing_sklearn(toy_export: ExportResult) -> None:
    card = parse(MLCard, json.loads(toy_export.card_path.read_text()))
    assert [c.expected for c in card.reference_cases] != [0.0, 0.0]  # computed by onnxruntime
    assert toy_export.max_abs_difference is not None and toy_export.max_abs_difference < 1e-4
    with zipfile.ZipFile(io.BytesIO(_archive(toy_export))) as zf:
        assert sorted(zf.namelist()) == sorted([CARD_ENTRY, card.artefact])


def test_submit_validate_show_and_search(store: Registry, toy_export: ExportResult) -> None:
    stored = store.submit_file(_archive(toy_export), filename="toy-cl.zip")
    assert stored.format == "onnx" and stored.is_ml and stored.ml_card is not None
    report = store.validate(stored.model_id, stored.version)
    assert [s.name for s in report.stages] == ["onnx", "card", "run", "reproduce"]
    assert report.is_valid, report.to_dicts()
    assert store.report(stored.model_id).to_dicts() == report.to_dicts()  # stored like SBML stages
    assert store.get("toy-cl").status == "validated"
    assert store.submit_file(_archive(toy_export), filename="toy-cl.zip").deduplicated
    found = lambda **q: [v.model_id for v in store.search(SearchQuery(**q)).items]  # noqa: E731
    assert found(predicts="CL") == ["toy-cl"] and found(predicts="pk_parameter") == ["toy-cl"]
    assert found(predicts="probability") == []
    assert found(feature="2164-2") == ["toy-cl"] and found(feature="CYP3A5") == ["toy-cl"]
    assert found(feature="2160-0") == [] and found(drug="vancomycin") == ["toy-cl"]
    assert found(format="onnx") == ["toy-cl"]
    turtle = store.export_rdf("toy-cl", 1)
    assert "predictedQuantity" in turtle and "loinc.org/2164-2" in turtle and "trainingSite" in turtle
    rows = store.sparql(
        "PREFIX reg: <https://w3id.org/digphat/registry/vocab#> "
        "SELECT ?v WHERE { ?v reg:predicts ?q . FILTER(CONTAINS(STR(?q), 'pk_parameter')) }"
    )
    assert len(rows) == 1
    with pytest.raises(ModelError, match="is an ML model"):
        _ = store.get("toy-cl").card
    again = load_ml(store.export_omex("toy-cl", 1))  # an ML version comes out as its archive
    assert again.card == stored.ml_card


def test_a_card_whose_reference_outputs_are_wrong_fails_reproduce(
    store: Registry, toy_export: ExportResult
) -> None:
    card = json.loads(toy_export.card_path.read_text())
    card["reference_cases"][0]["expected"] += 1e-4
    card["id"] = "toy-cl-wrong"
    bad = pack(toy_export.onnx_path.read_bytes(), parse(MLCard, card))
    stored = store.submit_file(bad, filename="wrong.zip")
    report = store.validate(stored.model_id, stored.version)
    assert report.failed_stage is not None and report.failed_stage.name == "reproduce"
    assert "reference case 0" in report.failed_stage.issues[0].message
    assert store.get("toy-cl-wrong").status == "submitted"


def test_a_card_naming_more_features_than_the_graph_takes_fails_the_card_stage(
    store: Registry, toy_export: ExportResult
) -> None:
    card = json.loads(toy_export.card_path.read_text())
    extra = {"name": "AGE", "source": {"patient_field": "age_years"}}
    card.update(id="toy-cl-io", features=[*card["features"], extra])
    for case in card["reference_cases"]:
        case["inputs"]["AGE"] = 50
    stored = store.submit_file(
        pack(toy_export.onnx_path.read_bytes(), parse(MLCard, card)), filename="io.zip"
    )
    report = store.validate(stored.model_id, stored.version)
    assert report.failed_stage is not None and report.failed_stage.name == "card"
    assert "takes 2 features, the card lists 3" in report.failed_stage.issues[0].message


def _graph(node: onnx.NodeProto, opset: list[onnx.OperatorSetIdProto] | None = None) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])
    w = numpy_helper.from_array(np.ones((2,), dtype=np.float32), "W")
    g = helper.make_graph([node], "g", [x], [y], initializer=[w])
    return helper.make_model(g, opset_imports=opset or [helper.make_opsetid("", 17)])


def test_custom_operators_and_domains_are_refused() -> None:
    custom = _graph(
        helper.make_node("Evil", ["X", "W"], ["Y"], domain="com.example"),
        [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
    )
    with pytest.raises(ModelError, match="com.example"):
        inspect_onnx(custom.SerializeToString())
    unknown = _graph(helper.make_node("NotAnOp", ["X", "W"], ["Y"]))
    with pytest.raises(ModelError, match="not a standard ONNX operator"):
        inspect_onnx(unknown.SerializeToString())
    with pytest.raises(ModelError, match="not an ONNX model"):
        inspect_onnx(b"\x08\x07 garbage")


def _external(location: str) -> onnx.ModelProto:
    model = _graph(helper.make_node("Mul", ["X", "W"], ["Y"]))
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "8")):
        w.external_data.add(key=k, value=v)
    return model


def test_external_data_only_from_inside_the_archive(tmp_path: Path) -> None:
    secret = tmp_path / "weights.bin"
    secret.write_bytes(np.array([2, 3], dtype=np.float32).tobytes())
    for location in (str(secret), "../weights.bin", "weights.bin"):
        with pytest.raises(ModelError, match="not a file inside the archive"):
            inspect_onnx(_external(location).SerializeToString(), external={})
    data, facts = inspect_onnx(
        _external("weights.bin").SerializeToString(), external={"weights.bin": secret.read_bytes()}
    )
    assert facts.inlined_tensors == 1
    inlined = onnx.load_from_string(data).graph.initializer[0]
    assert numpy_helper.to_array(inlined).tolist() == [2.0, 3.0]


def test_archives_without_card_or_model_and_oversized_models_are_refused(toy_export: ExportResult) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(CARD_ENTRY, toy_export.card_path.read_text())
    with pytest.raises(InvalidModelError, match="lacks"):
        load_ml(buf.getvalue())
    from interop.schema.onnx_model import OnnxLimits

    with pytest.raises(InvalidModelError, match="exceeds"):
        load_ml(_archive(toy_export), limits=OnnxLimits(max_bytes=100))


def test_a_pickle_is_loaded_only_when_trusted(tmp_path: Path) -> None:
    fit_toy(tmp_path / "m.joblib")
    with pytest.raises(InteropError, match="runs when loaded"):
        export_sklearn(tmp_path / "m.joblib", tmp_path / "out", trusted=False, card_template=TEMPLATE)
    skeleton = export_sklearn(tmp_path / "m.joblib", tmp_path / "skel", trusted=True)
    assert skeleton.archive_path is None and "TODO" in skeleton.card_path.read_text()


def test_cli_export_submit_search(tmp_path: Path) -> None:
    fit_toy(tmp_path / "m.joblib")
    env = {"INTEROP_HOME": str(tmp_path / "home")}
    out = invoke(
        ["ml", "export", str(tmp_path / "m.joblib"), "--out", str(tmp_path / "x"), "--card", str(TEMPLATE)]
    )
    assert out.returncode == 1 and "--trust" in out.stderr
    out = invoke(
        [
            "ml",
            "export",
            str(tmp_path / "m.joblib"),
            "--out",
            str(tmp_path / "x"),
            "--card",
            str(TEMPLATE),
            "--trust",
        ]
    )
    assert out.returncode == 0, out.stderr
    sub = invoke(["registry", "submit", str(tmp_path / "x" / "toy-cl.zip")], env)
    assert sub.returncode == 0 and "reproduce" in sub.stdout and "without a model card" not in sub.stdout
    found = invoke(["registry", "search", "--feature", "2164-2"], env)
    assert "toy-cl@1" in found.stdout


def test_without_the_ml_extra(monkeypatch: pytest.MonkeyPatch, toy_export: ExportResult) -> None:
    for name in [m for m in sys.modules if m == "onnx" or m.startswith("onnx.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError, match=r"digphat-interop\[ml\]") as err:
        inspect_onnx(toy_export.onnx_path.read_bytes())
    assert err.value.extra == "ml"
    with pytest.raises(RegistryError):  # the SBML plug-ins do not take an ML archive
        from registry.formats import get_format

        get_format("onnx")


def test_the_examples_pipeline_exports_and_validates(store: Registry, tmp_path: Path) -> None:
    """examples/ml: a scaler + gradient-boosting pipeline, its card template and reference rows."""
    import importlib.util

    import joblib

    from tests.data import ROOT

    spec = importlib.util.spec_from_file_location(
        "fit_pipeline", ROOT / "examples" / "ml" / "fit_pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    joblib.dump(module.fit(), tmp_path / "p.joblib")
    out = invoke(
        ["ml", "export", str(tmp_path / "p.joblib"), "--trust", "--out", str(tmp_path / "x"),
         "--card", str(ROOT / "examples" / "ml" / "ml-card.template.json"),
         "--reference", str(ROOT / "examples" / "ml" / "reference_rows.csv")]
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    stored = store.submit_file((tmp_path / "x" / "example-vanco-cl.zip").read_bytes())
    assert store.validate(stored.model_id, stored.version).is_valid
    assert stored.ml_card is not None and len(stored.ml_card.reference_cases) == 3


def test_a_classifier_exports_its_probability(store: Registry, tmp_path: Path) -> None:
    import joblib
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(2)
    x = np.column_stack([rng.uniform(20, 150, 300), rng.integers(0, 2, 300)])
    y = (x[:, 0] < 50) | (x[:, 1] == 1)
    joblib.dump(GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x, y), tmp_path / "c.joblib")
    template = json.loads(TEMPLATE.read_text())
    template.update(
        id="toy-risk",
        predicts={"kind": "probability", "name": "nephrotoxicity risk", "unit": "1"},
        output={"column": 1},
    )
    (tmp_path / "t.json").write_text(json.dumps(template))
    result = export_sklearn(
        tmp_path / "c.joblib", tmp_path / "out", trusted=True, card_template=tmp_path / "t.json"
    )
    assert result.max_abs_difference is not None and result.max_abs_difference < 1e-5
    stored = store.submit_file(_archive(result))
    assert store.validate(stored.model_id, stored.version).is_valid
    card = stored.ml_card
    assert card is not None and all(0 <= c.expected <= 1 for c in card.reference_cases)
