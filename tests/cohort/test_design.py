from pathlib import Path

import pytest

from interop.cohort import load_design
from interop.errors import SchemaError
from tests.data import COHORT_DESIGN, COHORT_DESIGN_SHORT


def test_yaml_design_expands_repeats_and_scales_by_weight() -> None:
    d = load_design(COHORT_DESIGN)
    doses = d.regimen({"WT": 80.0})
    assert len(doses) == 7
    assert [x.time_h for x in doses] == [0, 24, 48, 72, 96, 120, 144]
    assert all(x.amount == pytest.approx(400.0) and x.duration_h == 0.5 for x in doses)
    assert d.sampling_h[-1] == 167.5


def test_json_design_reads_too() -> None:
    d = load_design(COHORT_DESIGN_SHORT)
    assert len(d.regimen({"WT": 70.0})) == 2


def test_bad_design_names_file_and_field(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("doses: [{route: iv-infusion, amount: -5}]\nsampling_h: [1]\n")
    with pytest.raises(SchemaError) as err:
        load_design(p)
    assert "bad.yaml" in str(err.value) and "doses.0.amount" in str(err.value)


def test_unparseable_yaml_names_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("doses:\n  - {route: oral\nsampling_h: [1]\n")
    with pytest.raises(SchemaError) as err:
        load_design(p)
    assert err.value.source == str(p) and err.value.line is not None


def test_unsorted_sampling_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "d.json"
    p.write_text('{"doses": [{"route": "iv-bolus", "amount": 100}], "sampling_h": [5, 1]}')
    with pytest.raises(SchemaError, match="increasing"):
        load_design(p)
