"""Every model-format plug-in meets the typed contract ``registry.formats.FormatPlugin``.

Statically (mypy checks the module assignments below) and at run time: each plug-in named in
``FORMATS`` has ``detect``/``load`` with the Protocol's signatures, recognises its own sample (and
``detect_format`` picks it for that sample, detection order included), refuses bytes of no format,
and loads its sample into SBML plus an optional model card.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from interop.schema import MLCard, ModelCard
from registry.formats import (
    FORMATS,
    ML_FORMATS,
    ArchivePlugin,
    ExtraFile,
    FormatPlugin,
    MLFormatPlugin,
    antimony,
    detect_format,
    get_format,
    get_ml_format,
    omex,
    onnx,
    pharmml,
    sbml,
)
from tests.data import ABSORPTION_SBML, BIOMD321_OMEX, GENTAMICIN_ANTIMONY, PHARMML_ONECMT_IV

PLUGINS: tuple[FormatPlugin, ...] = (antimony, omex, pharmml, sbml)  # mypy: each module meets the Protocol
ARCHIVES: tuple[ArchivePlugin, ...] = (omex,)
ML_PLUGINS: tuple[MLFormatPlugin, ...] = (onnx,)

SAMPLES: dict[str, Path] = {
    "antimony": GENTAMICIN_ANTIMONY,
    "omex": BIOMD321_OMEX,
    "nonmem": Path(__file__).parents[1] / "nonmem_import" / "fixtures" / "advan1_iv.mod",
    "pharmml": PHARMML_ONECMT_IV,
    "sbml": ABSORPTION_SBML,
    "onnx": Path(__file__).parents[1] / "ml" / "fixtures" / "toy-cl.zip",  # ML: ONNX + ML card
}


def _shape(fn: object) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", FORMATS)
def test_plugin_meets_the_protocol(name: str) -> None:
    plugin = get_format(name)
    assert isinstance(plugin, FormatPlugin)
    for method in ("detect", "load"):
        expected = _shape(getattr(FormatPlugin, method))[1:]  # without ``self``
        assert [(n, k) for n, k, _ in _shape(getattr(plugin, method))][: len(expected)] == [
            (n, k) for n, k, _ in expected
        ], f"{name}.{method}"
    if isinstance(plugin, ArchivePlugin):
        assert [n for n, _, _ in _shape(plugin.extra_files)] == ["raw"]


@pytest.mark.parametrize("name", FORMATS)
def test_plugin_detects_and_loads_its_sample(name: str) -> None:
    assert name in SAMPLES, f"add a sample file for the {name!r} plug-in to this test"
    raw = SAMPLES[name].read_bytes()
    plugin = get_format(name)
    assert plugin.detect(raw) and detect_format(raw) == name
    assert not plugin.detect(b"\x00\x01 no model format")
    text, card = plugin.load(raw, source=str(SAMPLES[name]))
    assert "<sbml" in text and (card is None or isinstance(card, ModelCard))
    if isinstance(plugin, ArchivePlugin):
        extras = plugin.extra_files(raw)
        assert extras and all(isinstance(e, ExtraFile) for e in extras)


@pytest.mark.parametrize("name", ML_FORMATS)
def test_ml_plugin_meets_its_protocol_and_loads_its_sample(name: str) -> None:
    """ML plug-ins (no SBML) meet ``MLFormatPlugin``: detect, then the checked model and its card."""
    plugin = get_ml_format(name)
    assert isinstance(plugin, MLFormatPlugin) and not isinstance(plugin, FormatPlugin)
    for method in ("detect", "load_ml"):
        expected = _shape(getattr(MLFormatPlugin, method))[1:]
        assert [(n, k) for n, k, _ in _shape(getattr(plugin, method))][: len(expected)] == [
            (n, k) for n, k, _ in expected
        ], f"{name}.{method}"
    raw = SAMPLES[name].read_bytes()
    assert plugin.detect(raw) and detect_format(raw) == name
    assert not plugin.detect(b"\x00\x01 no model format") and not plugin.detect(SAMPLES["omex"].read_bytes())
    package = plugin.load_ml(raw, source=str(SAMPLES[name]))
    assert isinstance(package.card, MLCard) and package.onnx and package.facts.n_nodes >= 1
