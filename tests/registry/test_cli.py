"""The ``interop registry`` commands against a local SQLite registry: ``import-dir`` in a subprocess
(as a user runs it), the others in-process (typer's CliRunner)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from interop.schema import MetricValue, ValidationRecord
from registry import open_registry
from tests.clirun import CliRun, invoke, run_subprocess
from tests.data import ABSORPTION_SBML, BIOMD321_OMEX, GENTAMICIN_CARD, GENTAMICIN_SBML


def _env(home: Path) -> dict[str, str | None]:
    return {"INTEROP_HOME": str(home), "INTEROP_DATABASE_URL": None}


def _run(home: Path, *args: str) -> CliRun:
    """``interop registry ARGS`` in-process with ``home`` as ``INTEROP_HOME``."""
    return invoke(["registry", *args], env=_env(home))


@pytest.mark.slow
def test_import_dir_show_search_export_publish(tmp_path: Path) -> None:
    home, src = tmp_path / "home", tmp_path / "models"
    src.mkdir()
    for p in (ABSORPTION_SBML, BIOMD321_OMEX, GENTAMICIN_SBML, GENTAMICIN_CARD):
        shutil.copy(p, src / p.name)
    broken = GENTAMICIN_SBML.read_text().replace(
        'compartment="body" initialAmount', 'compartment="nowhere" initialAmount', 1
    )
    (src / "broken.xml").write_text(broken.replace('id="gentamicin_1cmt"', 'id="broken_model"'))
    (src / "notes.xml").write_text("<notes>not a model</notes>")

    r = run_subprocess(["registry", "import-dir", str(src)], env=_env(home))  # the group's end-to-end check
    assert r.returncode == 0, r.stderr
    assert "5 file(s): 3 validated, 1 failed, 1 refused" in r.stdout
    assert "failed consistency: [20601]" in r.stdout and "importing" in r.stderr  # the progress bar

    reg = open_registry(f"sqlite:///{home / 'registry.sqlite'}", home / "blobs")
    try:
        sha = reg.get("gentamicin-1cmt", 1).sbml_sha256
        for site, value in (("uni-a", 3.25), ("uni-b", -7.5)):
            reg.add_validation_record(
                ValidationRecord(
                    model_id="gentamicin-1cmt",
                    model_version=1,
                    model_sha256=sha,
                    site=site,
                    software="t 1",
                    dataset_fingerprint="c" * 64,
                    n_patients=5,
                    n_levels=20,
                    metrics=(
                        MetricValue(
                            name="mpe_percent", setting="a-priori", observable="gentamicin", value=value, n=20
                        ),
                    ),
                ),
                submitted_by=f"{site}-bot",
            )
    finally:
        reg.close()
    r = _run(home, "show", "gentamicin-1cmt", "--validation")
    assert r.returncode == 0, r.stderr
    assert "uni-a" in r.stdout and "uni-b" in r.stdout and "3.25" in r.stdout and "-7.5" in r.stdout
    assert "a-priori gentamicin mpe_percent" in r.stdout and "reproduce" in r.stdout

    r = _run(home, "search", "--atc", "J01GB03")
    assert "gentamicin-1cmt@1" in r.stdout and "1 version(s)" in r.stdout
    r = _run(home, "export", "gentamicin-1cmt", "--format", "turtle")
    assert "identifiers.org/atc:J01GB03" in r.stdout
    r = _run(home, "sparql", "SELECT ?t WHERE { ?v <http://purl.org/dc/terms/title> ?t } ORDER BY ?t")
    assert "Grange2001" in r.stdout and "4 row(s)" in r.stdout

    r = _run(home, "publish", "broken", "1")  # a card-less id comes from the file name
    assert r.returncode == 1 and "failed stage" in r.stderr and "Traceback" not in r.stderr
