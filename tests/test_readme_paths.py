"""The README stands on the repository alone: every file its commands name is in the checkout, and it
never points outside it (no ../shared)."""

from __future__ import annotations

import re

from tests.data import ROOT

README = (ROOT / "README.md").read_text()
# Paths into the repository's own folders, as the README's commands write them.
PATH = re.compile(r"(?<![\w/.$])((?:examples|interop/data|tests/fixtures|docs)/[\w./{},*-]+)")


def test_readme_commands_use_files_inside_the_repository() -> None:
    named = {m.rstrip(".,)") for m in PATH.findall(README)}
    assert any(p.startswith("examples/") for p in named)
    missing = []
    for path in sorted(named):
        if "{" in path:  # mapbayr_{001,006,...}: one pattern, several files
            pattern = re.match(r"(.*)\{(.*)\}(.*)", path)
            assert pattern is not None
            head, alts, tail = pattern.groups()
            candidates = [head + a + tail for a in alts.split(",")]
        else:
            candidates = [path]
        for c in candidates:
            if not any(ROOT.glob(c)) and not any(ROOT.glob(c + ".*")):
                missing.append(c)
    assert not missing, f"README names files that are not in the repository: {missing}"


def test_readme_does_not_point_outside_the_repository() -> None:
    assert "../shared" not in README and "DESIGN.md" not in README
