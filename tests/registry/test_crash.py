"""A submission killed half-way (SIGKILL in a child process) leaves no half-written version
and no orphan blob visible; the next open's garbage collection removes what it left on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from registry import open_registry
from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML, ROOT

CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from interop.schema import ModelCard, parse_json
    from registry import open_registry
    from registry import repository
    reg = open_registry(sys.argv[1], Path(sys.argv[2]))
    card = parse_json(ModelCard, Path(sys.argv[3]).read_text())
    sbml = Path(sys.argv[4]).read_text()
    where = sys.argv[5]
    if where == "after-rows":
        # Killed inside the transaction: rows flushed, not committed.
        real = repository.add_audit
        def killer(*a, **k):
            real(*a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
        repository.add_audit = killer
    else:
        # Killed while the blob is being written (after the temporary file is created).
        real_fsync = os.fsync
        def killer(fd):
            os.kill(os.getpid(), signal.SIGKILL)
        os.fsync = killer
    reg.submit(sbml, card)
""")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["after-rows", "in-blob-write"])
def test_killed_submission_leaves_nothing_visible(db_url: str, tmp_path: Path, where: str) -> None:
    blobs = tmp_path / "blobs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, db_url, str(blobs), str(GENTAMICIN_CARD), str(GENTAMICIN_SBML), where],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    left = [p for p in blobs.rglob("*") if p.is_file() and p.name != "REGISTRY-ID"]
    assert left, "the child died after writing to the blob folder"
    reg = open_registry(db_url, blobs)  # opening deletes nothing (garbage goes only on `registry gc`)
    try:
        assert sorted(p for p in blobs.rglob("*") if p.is_file() and p.name != "REGISTRY-ID") == sorted(left)
        assert reg.list_models() == [] and reg.audit() == [] and reg.search().total == 0
        gc = reg.collect_garbage(grace_s=0)
        assert len(gc.removed_blobs) + len(gc.removed_temp_files) == len(left)
        assert [p for p in blobs.rglob("*") if p.is_file() and p.name != "REGISTRY-ID"] == []
        # The registry works normally afterwards: the same submission gets version 1.
        from interop.schema import ModelCard, parse_json

        s = reg.submit(GENTAMICIN_SBML.read_text(), parse_json(ModelCard, GENTAMICIN_CARD.read_text()))
        assert s.version == 1 and reg.get(s.model_id, 1).sbml == GENTAMICIN_SBML.read_text()
    finally:
        reg.close()
