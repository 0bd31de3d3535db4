"""NONMEM control stream import: a control stream as SBML plus a model card (parsed with pharmpy).

The format plug-in contract: ``detect(raw) -> bool`` and ``load(raw, source=...) -> (sbml, card)``;
``load`` raises :class:`NonmemError` (a ``ModelError``) listing every construct it cannot
represent with its line. ``convert`` gives the full result (warnings) and accepts units and the
drug's code, which control streams do not carry. ``export_control_stream`` goes the other way for
linear compartmental models.
"""

from registry.formats.nonmem.convert import Conversion, convert, detect, load
from registry.formats.nonmem.stream import NonmemError, Problem

__all__ = ["Conversion", "NonmemError", "Problem", "convert", "detect", "load"]
