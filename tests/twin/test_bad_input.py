"""Bad input to the twin: a clear typed error or a flagged result, never a silent NaN."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from converters.nonmem import read_event_table
from interop.errors import ModelError, SchemaError, TwinError
from interop.schema import PatientRecord
from interop.twin import CompiledModel, bind_patient, estimate_map, simulate
from interop.workflows.twin import event_table_mapping


def record(tmp_path: Path, model: CompiledModel, rows: str) -> PatientRecord:
    p = tmp_path / "t.csv"
    p.write_text("ID,TIME,EVID,AMT,CMT,DV\n" + rows)
    return read_event_table(p, event_table_mapping(model.card)).records[0]


def test_no_doses(tmp_path: Path, mapbayr: Callable[[str], CompiledModel]) -> None:
    m = mapbayr("001")
    with pytest.raises(TwinError, match="no administered dose") as e:
        bind_patient(m, record(tmp_path, m, "1,1,0,0,2,3.5\n"))
    assert e.value.field == "doses"


def test_levels_before_the_first_dose_are_flagged(
    tmp_path: Path, mapbayr: Callable[[str], CompiledModel]
) -> None:
    m = mapbayr("001")
    twin = bind_patient(m, record(tmp_path, m, "1,0,0,0,2,0.5\n1,1,1,10000,1,.\n1,5,0,0,2,110\n"))
    assert any("before the first dose" in n for n in twin.notes)
    assert twin.doses[0].time_h == 1.0
    fit = estimate_map(twin, starts=1)
    assert np.isfinite(fit.ofv) and fit.predictions[0] == 0.0


def test_units_that_do_not_match_the_model(tmp_path: Path, mapbayr: Callable[[str], CompiledModel]) -> None:
    m = mapbayr("001")
    rec = record(tmp_path, m, "1,0,1,10000,1,.\n1,5,0,0,2,110\n")
    bad_dose = rec.replace(doses=[{**rec.doses[0].model_dump(), "unit": "mL"}])
    with pytest.raises(TwinError, match="convert") as e:
        bind_patient(m, bad_dose)
    assert e.value.field == "unit" and e.value.source == rec.doses[0].id
    level = rec.measurements[0].model_dump()
    bad_level = rec.replace(measurements=[{**level, "unit": "mmol/L"}])
    with pytest.raises(TwinError, match="convert"):
        bind_patient(m, bad_level)
    ok = rec.replace(measurements=[{**level, "unit": "ug/mL"}])  # same dimension: converted
    assert bind_patient(m, ok).observations[0].value == pytest.approx(110)


def test_negative_concentration_is_refused(tmp_path: Path, mapbayr: Callable[[str], CompiledModel]) -> None:
    m = mapbayr("001")
    rec = record(tmp_path, m, "1,0,1,10000,1,.\n1,5,0,0,2,110\n")
    with pytest.raises(SchemaError, match="negative"):
        rec.replace(measurements=[{**rec.measurements[0].model_dump(), "value": -1.0}])


def test_a_failing_integration_is_an_error(tmp_path: Path, mapbayr: Callable[[str], CompiledModel]) -> None:
    m = mapbayr("001")
    twin = bind_patient(m, record(tmp_path, m, "1,0,1,10000,1,.\n1,5,0,0,2,110\n"))
    for method in ("auto", "roadrunner"):
        with pytest.raises((TwinError, ModelError)) as e:
            simulate(twin, [1.0, 5.0], parameters={"TVV": 0.0}, method=method)  # type: ignore[arg-type]
        assert "non-finite" in str(e.value) or "libRoadRunner" in str(e.value)
