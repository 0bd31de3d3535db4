"""What every converter that writes SBML does last: notes as XHTML, then libsbml's consistency check.

Used by the PharmML and NONMEM importers, so both refuse the same way an SBML document libsbml
finds inconsistent (unit and modelling-practice warnings are the validation pipeline's to report).
"""

from __future__ import annotations

import libsbml

from interop.errors import ModelError

__all__ = ["checked_sbml", "xhtml_notes"]


def xhtml_notes(text: str) -> str:
    """``text`` as an SBML ``<notes>`` element (one XHTML paragraph, escaped)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<notes><body xmlns="http://www.w3.org/1999/xhtml"><p>{escaped}</p></body></notes>'


def checked_sbml(doc: libsbml.SBMLDocument, written_from: str) -> str:
    """The document as text, or a ModelError listing libsbml's errors (units and practice aside)."""
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, False)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_MODELING_PRACTICE, False)
    doc.checkConsistency()
    errors = [
        doc.getError(i).getMessage().strip()
        for i in range(doc.getNumErrors())
        if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR
    ]
    if errors:
        raise ModelError(f"the SBML written from {written_from} is inconsistent: " + "; ".join(errors))
    return str(libsbml.writeSBMLToString(doc))
