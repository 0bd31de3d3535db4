"""PharmML import: a PharmML 0.6 / 0.7 / 0.8 / 0.9 model as SBML plus a model card.

The format plug-in contract: ``detect(raw) -> bool`` and ``load(raw, source=...) -> (sbml, card)``;
``load`` raises :class:`PharmMLError` (a ``ModelError``) listing every unsupported element with its
XML path. ``convert`` gives the full result (trial-design doses, column mappings, warnings) and
accepts parameter values, units and the drug's code that PharmML files often lack.
"""

from registry.formats.pharmml.convert import Conversion, convert, detect, load
from registry.formats.pharmml.document import SUPPORTED_VERSIONS, PharmMLError, Problem

__all__ = [
    "SUPPORTED_VERSIONS",
    "Conversion",
    "PharmMLError",
    "Problem",
    "convert",
    "detect",
    "load",
]
