"""NONMEM-style event tables <-> PatientRecord, on the mapbayr study's real datasets."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from converters.nonmem import (
    COVARIATE_SYSTEM,
    DoseCompartment,
    EventTableMapping,
    LevelCompartment,
    read_event_table,
    read_phi,
    write_event_table,
)
from interop.errors import ConversionError
from interop.schema import LOINC, Coding
from tests.data import MAPBAYR_MODELS, mapbayr_data, mapbayr_phi

PARENT = Coding(system="urn:test", code="parent")
METAB = Coding(system="urn:test", code="metabolite")
BW = Coding(system=LOINC, code="29463-7")
SEX = Coding(system=COVARIATE_SYSTEM, code="SEX")


def mapping(model: str) -> EventTableMapping:
    doses = (DoseCompartment(1, "oral"), DoseCompartment(2, "oral", rate_code=-2))
    levels = (LevelCompartment(2, PARENT), LevelCompartment(3, METAB))
    covs = {"BW": (BW, "kg"), "SEX": (SEX, "1")} if model == "301" else {}
    return EventTableMapping(drug=PARENT, doses=doses, levels=levels, covariates=covs)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("model", MAPBAYR_MODELS)
def test_every_row_is_converted_and_counts_add_up(model: str) -> None:
    path = mapbayr_data(model)
    rows = csv_rows(path)
    result = read_event_table(path, mapping(model), ignore=("s2_sampling",))
    assert result.report.balanced()
    assert len(result.records) == len({r["ID"] for r in rows}) == 100
    n_obs = sum(1 for r in rows if r["evid"] == "0")
    n_dose_rows = sum(1 for r in rows if r["evid"] == "1")
    assert result.report.read["observation"] == n_obs
    assert result.report.read["dose"] == n_dose_rows
    assert sum(len(r.drug_levels()) for r in result.records) == n_obs
    merged = result.report.flags["split-dose rows merged"]
    assert sum(len(r.doses) for r in result.records) == n_dose_rows - merged
    if model == "006":  # each dose is two rows (depot + RATE=-2 into central): one Dose each
        assert merged == n_dose_rows / 2
    else:
        assert merged == 0


def test_split_dose_rows_become_one_dose_with_repeats() -> None:
    rec = read_event_table(mapbayr_data("006"), mapping("006"), ignore=("s2_sampling",)).records[0]
    assert [(d.amount, d.route, d.interval_h, d.additional) for d in rec.doses] == [
        (10000.0, "oral", None, 0),
        (10000.0, "oral", 24.0, 6),
    ]
    assert len(rec.doses[1].occurrences()) == 7


def test_time_varying_covariates_one_value_per_time() -> None:
    rec = read_event_table(mapbayr_data("301"), mapping("301"), ignore=("s2_sampling",)).records[0]
    bw = sorted((m for m in rec.measurements if m.code.matches(BW)), key=lambda m: m.time)
    rows = [r for r in csv_rows(mapbayr_data("301")) if r["ID"] == "1"]
    assert [m.value for m in bw] == [float(r["BW"]) for r in rows]  # ID 1 has one row per time
    assert all(m.unit == "kg" for m in bw)


def test_round_trip_through_the_writer(tmp_path: Path) -> None:
    for model in ("006", "301", "401"):
        first = read_event_table(mapbayr_data(model), mapping(model), ignore=("s2_sampling",))
        out = tmp_path / f"{model}.csv"
        write_event_table(first.records, mapping(model), out)
        again = read_event_table(out, mapping(model))
        assert again.report.balanced()
        for a, b in zip(first.records, again.records, strict=True):
            assert a.patient.id == b.patient.id
            assert [(d.start, d.amount, d.route, d.interval_h, d.additional) for d in a.doses] == [
                (d.start, d.amount, d.route, d.interval_h, d.additional) for d in b.doses
            ]
            assert [(m.time, m.value, m.code.code) for m in a.drug_levels()] == [
                (m.time, m.value, m.code.code) for m in b.drug_levels()
            ]
            if model == "301":  # covariate values hold the same way at every event time
                va = sorted((m.time, m.value) for m in a.measurements if m.code.matches(BW))
                vb = sorted((m.time, m.value) for m in b.measurements if m.code.matches(BW))
                assert vb == [p for p in va if p[0] in {t for t, _ in vb}]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "table.csv"
    p.write_text(text)
    return p


def test_bad_input_names_file_line_and_field(tmp_path: Path) -> None:
    m = mapping("001")
    with pytest.raises(ConversionError, match="missing column") as e:
        read_event_table(write(tmp_path, "ID,TIME,AMT\n1,0,100\n"), m)
    assert e.value.line == 1
    with pytest.raises(ConversionError, match="not a number") as e:
        read_event_table(write(tmp_path, "ID,TIME,EVID,AMT,CMT,DV\n1,0,1,abc,1,.\n"), m)
    assert (e.value.line, e.value.field) == (2, "AMT")
    with pytest.raises(ConversionError, match="negative concentration") as e:
        read_event_table(write(tmp_path, "ID,TIME,EVID,AMT,CMT,DV\n1,0,1,100,1,.\n1,2,0,0,2,-3\n"), m)
    assert e.value.line == 3
    with pytest.raises(ConversionError, match="backwards"):
        read_event_table(write(tmp_path, "ID,TIME,EVID,AMT,CMT,DV\n1,5,1,100,1,.\n1,2,0,0,2,3\n"), m)


def test_unsupported_rows_are_reported_not_dropped(tmp_path: Path) -> None:
    text = (
        "ID,TIME,EVID,AMT,CMT,MDV,DV\n1,0,1,100,1,1,.\n1,1,5,0,1,1,.\n1,2,0,0,2,1,.\n"
        "1,3,0,0,7,0,5\n1,4,1,100,9,1,.\n1,5,0,0,2,0,4\n"
    )
    result = read_event_table(write(tmp_path, text), mapping("001"))
    rep = result.report
    assert rep.balanced()
    reasons = sorted(i.reason for i in rep.issues)
    assert any("EVID 5" in r for r in reasons)
    assert any("MDV 1" in r for r in reasons)
    assert any("CMT 7" in r for r in reasons) and any("CMT 9" in r for r in reasons)
    assert len(result.records[0].drug_levels()) == 1 and len(result.records[0].doses) == 1


@pytest.mark.parametrize("model", MAPBAYR_MODELS)
def test_phi_tables(model: str) -> None:
    phi = read_phi(mapbayr_phi(model))
    n_eta = {"001": 3, "006": 4, "301": 3, "401": 5}[model]
    assert len(phi) == 100
    row = phi["1"]
    assert len(row.etas) == n_eta and row.etc.shape == (n_eta, n_eta)
    assert (row.etc == row.etc.T).all() and row.obj > 0


def test_phi_bad_file(tmp_path: Path) -> None:
    p = tmp_path / "x.phi"
    p.write_text("TABLE NO. 1\n SUBJECT_NO ID ETA(1) OBJ\n 1 1 0.1\n")
    with pytest.raises(ConversionError, match="fields") as e:
        read_phi(p)
    assert e.value.line == 3


def _table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "table.csv"
    path.write_text(text)
    return path


def test_dur_na_and_unknown_columns(tmp_path: Path) -> None:
    iv = EventTableMapping(
        drug=PARENT, doses=(DoseCompartment(1, "iv-bolus"),), levels=(LevelCompartment(1, PARENT),)
    )
    path = _table(
        tmp_path,
        "ID,TIME,EVID,AMT,CMT,DUR,MDV,DV,WARD\n"
        "1,0,1,1000,1,0.5,1,NA,3\n"
        "1,2,0,NA,1,NA,0,12.5,3\n"
        "1,4,0,.,1,.,0,8.1,NA\n",
    )
    result = read_event_table(path, iv)
    rec = result.records[0]
    assert rec.doses[0].route == "iv-infusion" and rec.doses[0].duration_h == 0.5
    assert [m.value for m in rec.drug_levels()] == [12.5, 8.1]
    assert not any(m.code.code == "WARD" for m in rec.measurements)  # not silently a covariate
    reasons = [r for (kind, outcome, r) in result.report.reasons() if kind == "column"]
    assert reasons and "WARD" in reasons[0] and "--ignore WARD" in reasons[0]
    assert result.report.balanced()


def test_every_level_rejected_is_an_error_with_the_reason(tmp_path: Path) -> None:
    iv = EventTableMapping(
        drug=PARENT, doses=(DoseCompartment(1, "iv-bolus"),), levels=(LevelCompartment(1, PARENT),)
    )
    path = _table(tmp_path, "ID,TIME,EVID,AMT,CMT,MDV,DV\n1,0,1,1000,1,1,.\n1,2,0,0,5,0,12.5\n")
    with pytest.raises(ConversionError, match="no analyte mapped to CMT 5"):
        read_event_table(path, iv)


def test_rate_and_dur_together_are_rejected_and_a_bad_dose_names_its_line(tmp_path: Path) -> None:
    iv = EventTableMapping(
        drug=PARENT, doses=(DoseCompartment(1, "iv-bolus"),), levels=(LevelCompartment(1, PARENT),)
    )
    path = _table(
        tmp_path, "ID,TIME,EVID,AMT,CMT,RATE,DUR,MDV,DV\n1,0,1,1000,1,500,2,1,.\n1,2,0,0,1,0,0,0,12.5\n"
    )
    result = read_event_table(path, iv)
    assert result.report.count("rejected", "dose") == 1
    bad = _table(
        tmp_path, "ID,TIME,EVID,AMT,CMT,II,ADDL,MDV,DV\n1,0,1,1000,1,-12,2,1,.\n1,2,0,0,1,0,0,0,12.5\n"
    )
    with pytest.raises(ConversionError, match="invalid dose") as info:
        read_event_table(bad, iv)
    assert info.value.line == 2


def test_administration_ids_travel_with_their_compartments(tmp_path: Path) -> None:
    """CMT 1 and 2 are both IV boluses, into different places (adm 1, 2): the records keep which,
    rows of the same dose into two administrations are not merged, and writing gives the CMTs back."""
    doses = (DoseCompartment(1, "iv-bolus", adm=1), DoseCompartment(2, "iv-bolus", adm=2))
    m = EventTableMapping(drug=PARENT, doses=doses, levels=(LevelCompartment(3, PARENT),))
    path = tmp_path / "t.csv"
    path.write_text(
        "ID,TIME,EVID,AMT,CMT,RATE,MDV,DV\n1,0,1,100,1,0,1,.\n1,0,1,100,2,0,1,.\n1,1,0,0,3,0,0,2\n"
    )
    record = read_event_table(path, m).records[0]
    assert sorted(d.adm or 0 for d in record.doses) == [1, 2]
    write_event_table([record], m, tmp_path / "out.csv")
    rows = csv_rows(tmp_path / "out.csv")
    assert sorted(r["CMT"] for r in rows if r["EVID"] == "1") == ["1", "2"]
    plain = record.model_copy(update={"doses": (record.doses[0].model_copy(update={"adm": None}),)})
    out = write_event_table([plain], m)
    assert [r.split(",")[4] for r in out.splitlines()[1:] if r.split(",")[2] == "1"] == ["1"]  # primary
