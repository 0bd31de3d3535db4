"""Hybrid twins: a registered ONNX model supplies TVCL (or a correction) to the example's
mechanistic model; MAP individualises on top; every output names the ML model version; missing
features follow the stated rules (impute / fall back to the mechanistic value / refuse).

The ML model is a small gradient-boosting model of the example's true typical clearance, fitted
here on simulated sites A and B; libRoadRunner, onnxruntime and the SQLite registry are real.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor

from interop.errors import ModelError, RegistryError, TwinError
from interop.schema import MLCard, ModelCard, PatientRecord, parse
from interop.settings import Settings
from interop.twin import CompiledModel, bind_patient, bind_regimen, load_model, simulate
from interop.twin.covariates import describe_covariates
from interop.twin.hybrid import ml_features, ml_predictor
from interop.workflows import hybrid_example as ex
from interop.workflows.ml import export_sklearn, resolve_ml_links
from interop.workflows.registry_session import registry_session
from interop.workflows.twin import fit_patient


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A registry holding the example's ML model (validated), fitted on sites A and B."""
    root = tmp_path_factory.mktemp("hybrid")
    settings = Settings(home=root / "home", database_url=f"sqlite:///{root / 'registry.sqlite'}")
    card = parse(MLCard, ex.ml_card_template())
    records, truth = ex.simulate_site("A", 40, 3)
    more, truth_b = ex.simulate_site("B", 40, 3)
    x = np.array(
        [
            [ml_features(card, r, bind_patient(_mech(), r).origin).values[n] for n in card.feature_names]
            for r in records + more
        ]
    )
    y = np.log(
        [
            ex.true_typical_cl(c, d)
            for c, d in zip([*truth.crcl, *truth_b.crcl], [*truth.decreased, *truth_b.decreased], strict=True)
        ]
    )
    joblib.dump(
        GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0).fit(x, y), root / "m.joblib"
    )
    (root / "template.json").write_text(json.dumps(ex.ml_card_template()))
    result = export_sklearn(
        root / "m.joblib", root / "out", trusted=True, card_template=root / "template.json"
    )
    assert result.archive_path is not None
    with registry_session(settings) as reg:
        stored = reg.submit_file(result.archive_path.read_bytes(), filename="cl.zip")
        assert reg.validate(stored.model_id, stored.version).is_valid
    return settings


def _mech() -> CompiledModel:
    return load_model(ex.sbml(), ex.mechanistic_card())


def _patients(n: int = 4) -> list[PatientRecord]:
    return ex.simulate_site("C", n, 11)[0]


def test_the_ml_model_supplies_tvcl_and_map_individualises_on_top(home: Settings, tmp_path: Path) -> None:
    card = resolve_ml_links(ex.hybrid_card(), home)
    record = _patients(1)[0]
    model = load_model(ex.sbml(), card)
    twin = bind_patient(model, record)
    (contribution,) = twin.ml
    p = ml_predictor(card.ml_models[0])
    expected = p.predict_one(
        {k: float(v) for k, v in ml_features(p.card, record, twin.origin).values.items() if v is not None}
    )
    assert twin.covariates["TVCL"].at(0.0) == pytest.approx(expected) == contribution.prediction
    assert twin.covariates["CRCL"].at(0.0) == 100.0  # the replaced covariate model is neutral
    mech = bind_patient(load_model(ex.sbml(), ex.mechanistic_card()), record)
    assert "TVCL" not in mech.covariates and mech.ml == ()
    grid = [2.0, 20.0]
    hybrid_pred = simulate(twin, grid).values["gentamicin"]
    mech_pred = simulate(mech, grid).values["gentamicin"]
    assert not np.allclose(hybrid_pred, mech_pred)  # the ML typical value changes the a priori prediction
    outcome = fit_patient(ex.sbml(), card, record, tmp_path)
    assert outcome.json_path is not None
    payload = json.loads(outcome.json_path.read_text())
    (used,) = payload["ml_models"]
    assert used["model"] == "hybrid-example-cl@1" and len(used["sha256"]) == 64
    assert used["value"] == pytest.approx(expected) and not used["fell_back_to_mechanistic"]
    assert set(payload["fit"]["etas"]) == {"ETA_CL", "ETA_V"}
    assert payload["fit"]["individual_parameters"]["CL"] == pytest.approx(
        expected * np.exp(payload["fit"]["etas"]["ETA_CL"]), rel=1e-6
    )


def _without(record: PatientRecord, *, genotype: bool = False, old_creatinine: bool = False) -> PatientRecord:
    changes: dict[str, object] = {}
    if genotype:
        changes["genotypes"] = ()
    if old_creatinine:  # the creatinine 10 days before: the card's covariate carries it forward,
        # the ML feature's 168 h window does not reach it
        ms = [
            m.model_copy(update={"time": m.time - dt.timedelta(days=10)}) if m.id == "scr-1" else m
            for m in record.measurements
        ]
        changes["measurements"] = tuple(ms)
    return record.model_copy(update=changes)


def test_missing_features_impute_fall_back_or_refuse(home: Settings) -> None:
    card = resolve_ml_links(ex.hybrid_card(), home)
    model = load_model(ex.sbml(), card)
    record = _patients(1)[0]
    imputed = bind_patient(model, _without(record, genotype=True)).ml[0]
    assert "SLC22A2_DECREASED" in imputed.features.imputed and imputed.fallback is None
    assert "most frequent phenotype" in imputed.features.imputed["SLC22A2_DECREASED"]
    twin = bind_patient(model, _without(record, old_creatinine=True))
    fell = twin.ml[0]
    assert fell.prediction is None and "SCR" in (fell.fallback or "") and "CRCL" in fell.features.missing
    assert twin.covariates["TVCL"].at(0.0) == model.defaults["TVCL"]  # the mechanistic value
    assert twin.covariates["CRCL"].at(0.0) != 100.0  # and the mechanistic covariate model with it
    assert any("mechanistic value kept" in w for w in twin.covariate_report.warnings)  # type: ignore[union-attr]
    out = describe_covariates(twin)["ml_models"]
    assert out[0]["fell_back_to_mechanistic"] and out[0]["model"] == "hybrid-example-cl@1"  # type: ignore[index]
    strict = card.replace(ml_models=[{**card.ml_models[0].model_dump(), "on_missing": "refuse"}])
    with pytest.raises(TwinError, match="lacks feature") as err:
        bind_patient(load_model(ex.sbml(), strict), _without(record, old_creatinine=True))
    assert err.value.field == "SCR"


def test_a_correction_multiplies_the_individual_prediction(home: Settings) -> None:
    """Role correction: the ML output enters the observable's expression (here ``Cc * ML_CORR``)."""
    import libsbml

    doc = libsbml.readSBMLFromString(ex.sbml())
    p = doc.getModel().createParameter()
    p.setId("ML_CORR"), p.setValue(1.0), p.setConstant(False)
    sbml = libsbml.writeSBMLToString(doc)
    base = ex.mechanistic_card().model_dump()
    base["observables"][0]["sbml"] = "Cc * ML_CORR"
    base["ml_models"] = [{"model": "hybrid-example-cl@1", "role": "correction", "parameter": "ML_CORR"}]
    card = resolve_ml_links(parse(ModelCard, base), home)
    record = _patients(1)[0]
    corrected = bind_patient(load_model(sbml, card), record)
    plain = bind_patient(load_model(ex.sbml(), ex.mechanistic_card()), record)
    factor = corrected.ml[0].value
    got = simulate(corrected, [3.0, 30.0], {"ETA_CL": 0.1}).values["gentamicin"]
    ref = simulate(plain, [3.0, 30.0], {"ETA_CL": 0.1}).values["gentamicin"]
    np.testing.assert_allclose(got, factor * ref, rtol=1e-8)


def test_an_unloaded_or_unvalidated_ml_model_is_refused(home: Settings, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not loaded"):
        bind_patient(load_model(ex.sbml(), ex.hybrid_card()), _patients(1)[0])
    other = Settings(home=tmp_path / "h", database_url=f"sqlite:///{tmp_path / 'r.sqlite'}")
    with registry_session(other) as reg, registry_session(home) as src:
        stored = src.get("hybrid-example-cl", 1)
        files = {f.role: src.file_bytes(f) for f in src.files("hybrid-example-cl", 1)}
        reg.submit_file(files["source"], filename="cl.zip")  # submitted, never validated
        assert stored.status == "validated"
    with pytest.raises(ModelError, match="validate it before"):
        resolve_ml_links(ex.hybrid_card(), other)


def test_a_bare_regimen_keeps_the_mechanistic_value_and_says_so(home: Settings) -> None:
    card = resolve_ml_links(ex.hybrid_card(), home)
    model = load_model(ex.sbml(), card)
    twin = bind_regimen(model, card.reference_outputs[0].doses, card.reference_outputs[0].covariates)
    assert twin.ml == ()
    assert "no patient record" in describe_covariates(twin)["ml_models"][0]["note"]  # type: ignore[index]


def test_the_truth_file_is_the_generators_truth() -> None:
    assert json.loads((ex.EXAMPLE / "truth.json").read_text()) == ex.TRUTH


@pytest.mark.slow
def test_the_worked_example_cross_site(tmp_path: Path) -> None:
    """Train at A and B (MAP clearances), validate both registered twins at C: the records name
    both model versions, C's patients were never trained on, and the hybrid's a priori error is lower."""
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'registry.sqlite'}")
    result = ex.run_example(settings, tmp_path, n_train=40, n_test=25, n_sim=10)
    hybrid, mech = result.records["hybrid"], result.records["mechanistic"]
    assert [(u.model_id, u.model_version) for u in hybrid.ml_models] == [("hybrid-example-cl", 1)]
    assert mech.ml_models == () and hybrid.model_id == "hybrid-example-hybrid"
    assert hybrid.dataset_fingerprint == mech.dataset_fingerprint and hybrid.n_patients == 25
    trained = {p.stem for p in (tmp_path / "site-c" / "records").glob("*.json")}
    assert all(pid.startswith("hyb-C-") for pid in trained)
    assert result.value("hybrid", "a-priori", "mape_percent") < result.value(
        "mechanistic", "a-priori", "mape_percent"
    )
    report = (tmp_path / "validate-hybrid" / "report.html").read_text()
    assert "hybrid-example-cl@1" in report


def test_the_registry_validates_a_hybrid_cards_ml_links(home: Settings) -> None:
    from interop.workflows.registry_validation import twin_simulate_check

    with registry_session(home, simulate_check=twin_simulate_check) as reg:
        ok = reg.submit(ex.sbml(), ex.hybrid_card(), filename="model.xml")
        report = reg.validate(ok.model_id, ok.version)
        assert report.stage("ml-models").status == "passed" and report.is_valid
        bad = ex.hybrid_card().replace(
            id="hybrid-missing-ml",
            ml_models=[{**ex.hybrid_card().ml_models[0].model_dump(), "model": "nope@1"}],
        )
        stored = reg.submit(ex.sbml(), bad, filename="model.xml")
        report = reg.validate(stored.model_id, stored.version)
        assert report.failed_stage is not None and report.failed_stage.name == "ml-models"
        assert "nope@1" in report.failed_stage.issues[0].message
        loaded = resolve_ml_links(ex.hybrid_card(), reg)
        with pytest.raises(RegistryError, match="loaded ML models"):
            reg.submit(ex.sbml(), loaded, filename="model.xml")


def test_the_cli_twin_commands_name_the_ml_model(home: Settings, tmp_path: Path) -> None:
    """``interop twin forecast/recommend`` on a hybrid SBML file + card: the ML link is loaded from
    the registry, and every JSON output names the ML version."""
    from tests.clirun import invoke

    record = _patients(1)[0]
    (tmp_path / "p.json").write_text(record.model_dump_json())
    env = {"INTEROP_HOME": str(home.home), "INTEROP_DATABASE_URL": home.database_url}
    common = ["--model", str(ex.EXAMPLE / "model.xml"), "--card", str(ex.EXAMPLE / "hybrid.card.json")]
    common += ["--patient", str(tmp_path / "p.json")]
    out = invoke(["twin", "forecast", *common, "--draws", "20", "--out", str(tmp_path / "f")], env)
    assert out.returncode == 0, out.stderr
    rec = invoke(
        ["twin", "recommend", *common, "--target", "trough", "--low", "0.2", "--high", "1",
         "--amounts", "200,300,400", "--intervals", "24", "--out", str(tmp_path / "r")],
        env,
    )  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    for path in (tmp_path / "f" / "forecast.json", tmp_path / "r" / "recommendation.json"):
        used = json.loads(path.read_text())["ml_models"]
        assert [u["model"] for u in used] == ["hybrid-example-cl@1"] and len(used[0]["sha256"]) == 64
