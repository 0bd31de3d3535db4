"""Optional stacks are install extras: without one, the default install still runs the demo, and a
feature that needs it stops with ``MissingExtraError`` naming the extra to install.

The shared test environment has every extra installed and uninstalling one is not possible here, so
a missing package is simulated the way Python itself records one: ``sys.modules[name] = None`` makes
``import name`` raise ``ModuleNotFoundError`` (and ``importlib.util.find_spec`` return None).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from interop.errors import MissingExtraError
from tests.data import PGX_EXAMPLE_VCF, ROOT

OPTIONAL = {
    "api": ("fastapi", "starlette", "uvicorn", "multipart", "python_multipart"),
    "omics": ("cyvcf2", "anndata"),
    "cluster": ("dask", "distributed"),
    "postgres": ("psycopg",),
    "ml": ("onnx", "onnxruntime", "skl2onnx", "sklearn"),
}


def _block(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def test_reading_a_vcf_without_the_omics_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from converters.omics.vcf import call_vcf

    _block(monkeypatch, "cyvcf2")
    with pytest.raises(MissingExtraError, match=r"cyvcf2.*digphat-interop\[omics\]") as err:
        call_vcf(PGX_EXAMPLE_VCF)
    assert err.value.extra == "omics"


def test_reading_h5ad_without_the_omics_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from converters.omics.expression import read_matrix

    _block(monkeypatch, "anndata")
    path = tmp_path / "m.h5ad"
    path.write_bytes(b"not read")
    with pytest.raises(MissingExtraError, match=r"anndata.*\[omics\]"):
        read_matrix(path)


def test_dask_without_the_cluster_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from interop.cohort.scale import BatchRunner

    _block(monkeypatch, "dask", "distributed")
    with pytest.raises(MissingExtraError, match=r"--scheduler single.*\[cluster\]"):
        BatchRunner(scheduler=None).run(lambda shared, x: x, [(1,)])
    assert BatchRunner(scheduler="single").run(lambda shared, x: {"x": x}, [(1,)]) == [{"x": 1}]


def test_onnx_without_the_ml_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from interop.workflows.ml import to_onnx

    _block(monkeypatch, "skl2onnx")
    with pytest.raises(MissingExtraError, match=r"skl2onnx.*\[ml\]") as err:
        to_onnx(object(), 2)
    assert err.value.extra == "ml"
    _block(monkeypatch, "onnxruntime")
    from interop.schema import MLCard, parse_json
    from interop.schema.onnx_model import OnnxPredictor
    from tests.ml.conftest import FIXTURES

    card = parse_json(
        MLCard, (FIXTURES / "toy-cl.template.json").read_text().replace('"expected": 0', '"expected": 1')
    )
    with pytest.raises(MissingExtraError, match=r"onnxruntime.*\[ml\]"):
        OnnxPredictor(b"", card)


def test_postgres_without_the_postgres_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.db import make_engine

    _block(monkeypatch, "psycopg")
    with pytest.raises(MissingExtraError, match=r"PostgreSQL.*\[postgres\]"):
        make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    make_engine("sqlite://").dispose()  # SQLite needs no extra


@pytest.mark.slow
def test_the_demo_and_help_run_without_any_optional_stack(tmp_path: Path) -> None:
    blocked = [name for names in OPTIONAL.values() for name in names] + ["pysam"]
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "from interop.cli import main\n"
        "sys.argv = ['interop', *sys.argv[1:]]\n"
        "main()\n"
    )
    env = {**os.environ, "INTEROP_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    for args in (["--help"], ["demo"]):
        proc = subprocess.run(
            [sys.executable, "-c", script, *args], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "home" / "output" / "demo" / "concentration.png").stat().st_size > 0
    serve = subprocess.run(
        [sys.executable, "-c", script, "registry", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert serve.returncode == 1 and "digphat-interop[api]" in serve.stderr + serve.stdout
