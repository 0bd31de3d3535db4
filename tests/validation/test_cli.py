"""The real CLI: simulate a cohort (LocalCluster, in a subprocess as a user runs it), validate it and
send the record to a local registry (in-process, typer's CliRunner); user errors are one line and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from interop.errors import PermissionDenied
from interop.schema import ModelCard, ValidationRecord
from interop.workflows.validate import submit_record
from registry import open_registry
from tests.clirun import CliRun, invoke, run_subprocess
from tests.data import COHORT_COVARIATES, COHORT_DESIGN_SHORT, ROOT


@pytest.fixture()
def home(tmp_path: Path, sbml: str, card: ModelCard) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    reg = open_registry(f"sqlite:///{home / 'registry.sqlite'}", home / "blobs")
    try:
        reg.submit(sbml, card, submitted_by="test")
    finally:
        reg.close()
    return home


def _env(home: Path) -> dict[str, str | None]:
    return {"INTEROP_HOME": str(home), "INTEROP_DATABASE_URL": None}


def _run(home: Path, *args: str) -> CliRun:
    """``interop ARGS`` in-process with ``home`` as ``INTEROP_HOME``."""
    return invoke(args, env=_env(home))


@pytest.mark.slow
def test_simulate_validate_submit(home: Path, tmp_path: Path) -> None:
    sim = run_subprocess(
        [
            "simulate",
            "cohort",
            "--model",
            "gentamicin-1cmt",
            "--n",
            "8",
            "--design",
            str(COHORT_DESIGN_SHORT),
            "--covariates",
            str(COHORT_COVARIATES),
            "--records",
            "--batch-size",
            "3",
            "--out",
            str(tmp_path / "sim"),
        ],
        env=_env(home),
    )
    assert sim.returncode == 0, sim.stderr
    assert "8 subjects (0 failed), 32 levels" in sim.stdout
    val = _run(
        home,
        "validate",
        "--model",
        "gentamicin-1cmt@1",
        "--cohort",
        str(tmp_path / "sim" / "cohort"),
        "--site",
        "site-a",
        "--n-sim",
        "40",
        "--scheduler",
        "single",
        "--out",
        str(tmp_path / "val"),
        "--submit",
        str(home / "registry.sqlite"),
    )
    assert val.returncode == 0, val.stderr
    assert "8 included, 0 excluded" in val.stdout and "Record sent to" in val.stdout
    assert (tmp_path / "val" / "report.html").exists()
    assert "with 3 images" in val.stdout
    reg = open_registry(f"sqlite:///{home / 'registry.sqlite'}", home / "blobs")
    try:
        stored = reg.list_validation_records("gentamicin-1cmt", 1)
        (full,) = reg.validation_records("gentamicin-1cmt", 1)
        # The run's VPC and NPDE PNGs travelled with the record, byte for byte.
        sent = {i.title: reg.record_image("gentamicin-1cmt", 1, full.id, i.position)[1] for i in full.images}
    finally:
        reg.close()
    assert sent == {
        "VPC and pcVPC (gentamicin)": (tmp_path / "val" / "vpc.png").read_bytes(),
        "NPDE histogram (gentamicin)": (tmp_path / "val" / "npde_hist.png").read_bytes(),
        "NPDE QQ plot (gentamicin)": (tmp_path / "val" / "npde_qq.png").read_bytes(),
    }
    assert len(stored) == 1
    local = ValidationRecord.model_validate_json((tmp_path / "val" / "validation-record.json").read_text())
    assert stored[0].site == "site-a" and stored[0].dataset_fingerprint == local.dataset_fingerprint
    assert stored[0].metrics == local.metrics


def test_unknown_model_is_one_line_and_exit_1(home: Path, tmp_path: Path) -> None:
    res = _run(home, "validate", "--model", "no-such-model", "--cohort", str(tmp_path))
    assert res.returncode == 1
    assert "no-such-model" in res.stderr and "Traceback" not in res.stderr


def test_bad_design_file_names_the_file(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "design.yaml"
    bad.write_text("doses: []\nsampling_h: [1]\n")
    res = _run(home, "simulate", "cohort", "--model", "gentamicin-1cmt", "--n", "3", "--design", str(bad))
    assert res.returncode == 1
    assert "design.yaml" in res.stderr and "doses" in res.stderr and "Traceback" not in res.stderr


def test_not_a_cohort_folder(home: Path, tmp_path: Path) -> None:
    res = _run(home, "validate", "--model", "gentamicin-1cmt", "--cohort", str(tmp_path))
    assert res.returncode == 1 and "not a cohort folder" in res.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_submit_to_the_registry_api_and_show_sites_side_by_side(
    home: Path, tmp_path: Path, card: ModelCard, sbml: str
) -> None:
    """A real ``interop registry serve`` on 127.0.0.1; two sites send records with their tokens."""
    import time

    import httpx

    from interop.cohort import load_design, simulate_cohort

    reg = open_registry(f"sqlite:///{home / 'registry.sqlite'}", home / "blobs")
    try:
        tokens = {
            site: reg.create_user(f"{site}-validator", site, "contributor") for site in ("site-a", "site-b")
        }
    finally:
        reg.close()
    sim = simulate_cohort(
        sbml, card, load_design(COHORT_DESIGN_SHORT), 4, tmp_path / "sim", scheduler="single", records=True
    )
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INTEROP_HOME": str(home)}
    env.pop("INTEROP_DATABASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "interop", "registry", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for site in ("site-a", "site-b"):
            res = _run(
                home,
                "validate",
                "--model",
                "gentamicin-1cmt",
                "--cohort",
                str(sim.cohort_dir),
                "--site",
                site,
                "--n-sim",
                "30",
                "--scheduler",
                "single",
                "--no-iterative",
                "--out",
                str(tmp_path / site),
                "--submit",
                url,
                "--token",
                tokens[site],
            )
            assert res.returncode == 0, res.stderr
            assert "record 1" in res.stdout or "record 2" in res.stdout
        # Over HTTP the images travelled too (multipart), and the API serves them back.
        listed = httpx.get(
            f"{url}/models/gentamicin-1cmt/versions/1/validation-records/with-images",
            headers={"Authorization": f"Bearer {tokens['site-a']}"},
        ).json()
        assert [(x["record"]["site"], len(x["images"])) for x in listed] == [("site-a", 3), ("site-b", 3)]
        got = httpx.get(
            url + listed[1]["images"][0]["url"], headers={"Authorization": f"Bearer {tokens['site-a']}"}
        )
        assert got.content == (tmp_path / "site-b" / "vpc.png").read_bytes()
        # A site cannot send records in another site's name (the same submit path, in-process).
        record = ValidationRecord.model_validate_json(
            (tmp_path / "site-b" / "validation-record.json").read_text()
        )
        with pytest.raises(PermissionDenied, match="403"):
            submit_record(record, url, token=tokens["site-a"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    show = _run(home, "registry", "show", "gentamicin-1cmt", "--validation")
    assert show.returncode == 0, show.stderr
    assert "site-a" in show.stdout and "site-b" in show.stdout
