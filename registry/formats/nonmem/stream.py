"""Read a NONMEM control stream with pharmpy, refusing what SBML + card cannot represent.

Refusals name the line and the construct (``$PRED``, ``$MIX``, a user subroutine, a modelled
rate ``R1``...) and are collected into one :class:`NonmemError` before anything is written.
Record lines are found in the text itself because pharmpy's records do not carry them.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from interop.errors import MissingExtraError, ModelError

__all__ = ["NonmemError", "Problem", "Problems", "decode", "read_pharmpy", "record_lines"]

# NM-TRAN accepts record names abbreviated to their first three letters or more.
_RECORDS = (
    "PROBLEM", "INPUT", "DATA", "SUBROUTINES", "MODEL", "PK", "DES", "ERROR", "PRED", "THETA",
    "OMEGA", "SIGMA", "ESTIMATION", "COVARIANCE", "TABLE", "MIX", "INFN", "AES", "AESINITIAL",
    "ABBREVIATED", "SIMULATION", "SCATTERPLOT", "PRIOR", "THETAP", "THETAPV", "OMEGAP", "OMEGAPD",
    "SIGMAP", "SIGMAPD", "SIZES", "BIND", "LEVEL", "ETAS", "PHIS", "MSFI", "NONPARAMETRIC",
    "ANNEAL", "TOL", "TTDF", "DESIGN", "CONTR", "CCONTR", "OLKJDF", "OVARF", "SLKJDF", "SVARF",
)  # fmt: skip
SUPPORTED_ADVANS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14)
# NAME=file names user Fortran code; TOL=8 (a number) is a tolerance, not a routine.
_USER_CODE = re.compile(r"\b(OTHER|PRED|PK|ERROR|DES|AES|INFN|MIX|CONTR|CCONTR|CRIT|TOL)\s*=\s*(?!\d)", re.I)


@dataclass(frozen=True)
class Problem:
    line: int | None
    construct: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.construct}: {self.message}"


class NonmemError(ModelError):
    """Everything in a control stream that cannot become SBML + card, with lines and constructs."""

    def __init__(self, problems: list[Problem], *, source: str | None = None):
        self.problems = tuple(problems)
        first = problems[0] if problems else None
        text = "; ".join(str(p) for p in problems) or "unsupported control stream"
        super().__init__(
            f"cannot convert the NONMEM control stream: {text}",
            source=source,
            line=first.line if first else None,
            field=first.construct if first else None,
        )


class Problems:
    """Collects refusals; ``raise_if_any`` raises them together."""

    def __init__(self, source: str | None):
        self.source = source
        self.items: list[Problem] = []

    def add(self, line: int | None, construct: str, message: str) -> None:
        self.items.append(Problem(line, construct, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise NonmemError(sorted(self.items, key=lambda p: p.line or 0), source=self.source)


def decode(raw: bytes, source: str | None) -> str:
    """Control streams are ASCII in practice; Latin-1 comments are accepted, NUL bytes are not."""
    if b"\x00" in raw:
        raise NonmemError([Problem(None, "file", "binary data, not a control stream")], source=source)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def canonical_record(name: str) -> str | None:
    """The full record name for an abbreviation (``$SUB`` -> SUBROUTINES), None if unknown."""
    upper = name.upper()
    if upper.startswith("SUBS"):  # NM-TRAN's own short form of $SUBROUTINES
        return "SUBROUTINES"
    if upper in _RECORDS:
        return upper
    if len(upper) >= 3:
        for full in _RECORDS:
            if full.startswith(upper):
                return full
    return None


def record_lines(text: str) -> list[tuple[str, int, str]]:
    """(record name, 1-based line, the record's text without comments) in file order."""
    out: list[tuple[str, int, list[str]]] = []
    for i, line in enumerate(text.splitlines(), start=1):
        code = line.split(";", 1)[0]
        m = re.match(r"^\s*\$(\w+)", code)
        if m:
            out.append((canonical_record(m[1]) or m[1].upper(), i, [code]))
        elif out:
            out[-1][2].append(code)
    return [(n, ln, "\n".join(body)) for n, ln, body in out]


def line_of(text: str, pattern: str, after: int = 0) -> int | None:
    """First line at or after ``after`` whose code (not comment) matches ``pattern``."""
    rx = re.compile(pattern, re.I)
    for i, line in enumerate(text.splitlines(), start=1):
        if i >= after and rx.search(line.split(";", 1)[0]):
            return i
    return None


def check_constructs(text: str, problems: Problems) -> int | None:
    """Refusals visible in the text (records, subroutines); returns the ADVAN number."""
    records = record_lines(text)
    names = [r[0] for r in records]
    if "PROBLEM" not in names:
        problems.add(1, "$PROBLEM", "no $PROBLEM record: not a NONMEM control stream")
    for name, line, _body in records:
        if name == "PRED":
            problems.add(line, "$PRED", "a $PRED model computes Y from data items directly; the twin "
                         "needs compartments that doses enter ($SUBROUTINES ADVAN with $PK)")  # fmt: skip
        elif name == "MIX":
            problems.add(line, "$MIX", "mixture models have no SBML + card equivalent")
        elif name in ("INFN", "AES", "AESINITIAL"):
            problems.add(line, f"${name}", "not supported (user initialisation / DAE code)")
    for name, line, body in records:
        if name == "ESTIMATION" and re.search(r"(?<![\w-])(LIKE|-2LL)\b", body, re.I):
            why = (
                "Y is a likelihood (LIKE/-2LL: count, categorical or time-to-event data), not a "
                "continuous observation the twin can predict"
            )
            problems.add(line, "$ESTIMATION LIKE", why)
            break
    advan = None
    for name, line, body in records:
        if name != "SUBROUTINES":
            continue
        user = _USER_CODE.search(body)
        if user:
            problems.add(line, "$SUBROUTINES", f"user subroutine {user[1].upper()}= is not supported")
        m = re.search(r"\bADVAN(\d+)", body, re.I)
        if m is None:
            problems.add(line, "$SUBROUTINES", "no ADVAN")
        else:
            advan = int(m[1])
            if advan not in SUPPORTED_ADVANS:
                problems.add(line, f"ADVAN{advan}", "not supported (ADVAN1-4, 6, 10-14 are)")
    if advan is None and "SUBROUTINES" not in names and "PRED" not in names:
        problems.add(None, "$SUBROUTINES", "no $SUBROUTINES record")
    _verbatim(text, problems)
    for construct, pattern, why in (
        ("CALL", r"\bCALL\s+\w+", "calls to user routines are not supported"),
        ("MNEXT", r"\bMNEXT\s*\(", "MNEXT is not supported (MTIME/MPAST are)"),
        ("COM", r"\bCOM\s*\(\d", "global COM variables are not supported"),
        ("EXIT", r"\bEXIT\b", "EXIT in abbreviated code is not supported"),
        ("NEWIND", r"\bNEWIND\b", "code keeping values from record to record (NEWIND) is not supported"),
    ):
        found = line_of(text, pattern)
        if found is not None:
            problems.add(found, construct, why)
    return advan


_SOLVER_COMMON = re.compile(r"^\s*COMMON\s*/\s*PRCOMG\s*/\s*([\w\s,]+)$", re.I)
_DECLARATION = re.compile(r"^\s*(INTEGER|REAL|DOUBLE\s+PRECISION)\b", re.I)


def _verbatim(text: str, problems: Problems) -> None:
    """Verbatim Fortran (lines starting with ``"``) is refused, except NONMEM's solver settings.

    ``"FIRST`` / ``COMMON /PRCOMG/ ... IMAX`` / ``IMAX=...`` tunes NONMEM's ODE solver only; the
    twin has its own, so those lines change no prediction.
    """
    lines = [(i, ln.strip()[1:].split("!", 1)[0].strip()) for i, ln in enumerate(text.splitlines(), start=1)
             if ln.strip().startswith('"')]  # fmt: skip
    solver = set()
    for _i, code in lines:
        m = _SOLVER_COMMON.match(code)
        if m:
            solver |= {n.strip().upper() for n in m[1].split(",") if n.strip()}
    for i, code in lines:
        if (
            not code
            or code.upper() in ("FIRST", "LAST")
            or _SOLVER_COMMON.match(code)
            or _DECLARATION.match(code)
        ):
            continue
        target = re.match(r"^(\w+)\s*=", code)
        if target and target[1].upper() in solver:
            continue
        problems.add(i, "verbatim code", f"Fortran code ({code[:40]}) is not supported")
        return


def read_pharmpy(text: str, problems: Problems):  # type: ignore[no-untyped-def]
    """pharmpy's model for ``text`` (its own dataset is not read: the twin has the patient's)."""
    try:
        from pharmpy.modeling import read_model_from_string
    except ImportError as exc:
        raise MissingExtraError(
            exc.name or "pharmpy", extra="nonmem", purpose="reading a NONMEM control stream"
        ) from exc

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read_model_from_string(text)
    except Exception as exc:  # noqa: BLE001 - pharmpy raises many kinds; each is a parse refusal
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        m = re.search(r"line (\d+)", str(exc))
        problems.add(int(m[1]) if m else None, "control stream", f"pharmpy cannot parse it: {message}")
        return None
