"""PharmML 0.6 and 0.9: the shared 0.8.1 examples rewritten to the other versions convert to the
same card and simulate to the same predictions."""

from __future__ import annotations

import numpy as np
import pytest

from interop.schema import ReferenceDose
from interop.twin import bind_regimen, load_model, simulate
from registry.formats.pharmml import convert, detect
from tests.data import PHARMML_ADVAN1, PHARMML_USECASE1, PHARMML_USECASE3
from tests.pharmml.versions import to_06, to_09

CASES = [
    (PHARMML_USECASE1, None, {"logtWT": 0.1}, "oral"),
    (PHARMML_USECASE3, None, {"WT": 60.0}, "oral"),
    (PHARMML_ADVAN1, {"CL": 1.5}, {}, "iv-bolus"),
]


def _predict(raw: bytes, values, covariates, route):  # type: ignore[no-untyped-def]
    conv = convert(raw, source="model.xml", values=values)
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, (ReferenceDose(route=route, amount=50, time_h=0),), covariates)
    return conv, simulate(twin, [0.5, 2.0, 6.0, 24.0])


@pytest.mark.parametrize("rewrite", [to_06, to_09], ids=["0.6", "0.9"])
@pytest.mark.parametrize(("path", "values", "covariates", "route"), CASES, ids=[c[0].stem for c in CASES])
def test_other_versions_convert_alike(rewrite, path, values, covariates, route) -> None:  # type: ignore[no-untyped-def]
    raw = path.read_bytes()
    rewritten = rewrite(raw)
    version = "0.6" if rewrite is to_06 else "0.9"
    assert f"pharmml.org/pharmml/{version}/".encode() in rewritten
    assert b"pharmml.org/pharmml/0.8/" not in rewritten
    assert detect(rewritten)
    base, base_pred = _predict(raw, values, covariates, route)
    conv, pred = _predict(rewritten, values, covariates, route)
    assert conv.pharmml_version == version
    assert conv.card.model_dump(exclude={"description"}) == base.card.model_dump(exclude={"description"})
    for obs, series in base_pred.values.items():
        np.testing.assert_allclose(pred.values[obs], series, rtol=1e-12)


def test_rewrites_use_the_version_specific_forms() -> None:
    """Guard the fixtures themselves: the forms that differ between versions are present."""
    v06 = to_06(PHARMML_USECASE1.read_bytes())
    for form in (
        b"SimpleParameter",
        b"GaussianModel",
        b"<Transformation>log</Transformation>",
        b"http://www.uncertml.org/3.0",
        b"math:Equation",
    ):
        assert form in v06, form
    assert b"PopulationValue" not in v06 and b"ProbOnto" not in v06
    v09 = to_09(PHARMML_USECASE1.read_bytes())
    assert b"<FixedEffect><ct:Assign>" in v09.replace(b"\n", b"").replace(b"\t", b"").replace(b" ", b"")


@pytest.mark.parametrize(
    ("root", "version"),
    [
        ('<PharmML xmlns="http://www.pharmml.org/2013/03/PharmML" writtenVersion="0.3">', "0.3"),
        ('<PharmML xmlns="http://www.pharmml.org/2013/08/PharmML" writtenVersion="0.4">', "0.4"),
        ('<PharmML xmlns="http://www.pharmml.org/pharmml/0.5/PharmML">', "0.5"),
    ],
)
def test_old_pharmml_is_refused_by_version_not_as_foreign(root: str, version: str) -> None:
    from registry.formats import detect_format
    from registry.formats.pharmml import PharmMLError

    raw = f'<?xml version="1.0"?>\n{root}<Name>WP1 example</Name></PharmML>'.encode()
    assert detect(raw)
    assert detect_format(raw) == "pharmml"
    with pytest.raises(PharmMLError) as exc:
        convert(raw, source="wp1.xml")
    assert f"PharmML {version} is not supported (0.6\u20130.9 are)" in str(exc.value)
    assert "not a PharmML document" not in str(exc.value)
