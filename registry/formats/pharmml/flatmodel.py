"""The flat model a PharmML ModelDefinition is read into: SBML parameters with their rules,
random effects, covariates and observations, plus the small helpers every reader module uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from registry.formats.pharmml.document import Problems, local, xml_path
from registry.formats.pharmml.maths import Expr, Unsupported
from registry.formats.pharmml.symbols import BlockScope, Declaration, SymbolTable, first_expression

__all__ = [
    "PARAM_TAGS",
    "Correlation",
    "Covariate",
    "Eta",
    "Observation",
    "Parameter",
    "ReadModel",
    "declaration",
    "expression_in",
    "guard",
]

# population-level quantities; a design parameter (optimal-design files) with a value is a constant
PARAM_TAGS = ("PopulationParameter", "SimpleParameter", "Parameter", "DesignParameter")


@dataclass
class Parameter:
    id: str
    kind: str
    element: etree._Element  # where it is declared (or the macro that made it)
    value: float | None = None
    rule: Expr | None = None
    rate: Expr | None = None
    initial: Expr | None = None
    prior: bool = False  # rule is a prior's mean: an initial estimate replaces it

    @property
    def path(self) -> str:
        return xml_path(self.element)

    @property
    def line(self) -> int | None:
        return self.element.sourceline


@dataclass
class Eta:
    id: str
    name: str
    variance: Expr
    element: etree._Element


@dataclass
class Correlation:
    first: str
    second: str
    kind: str  # "correlation" or "covariance"
    value: Expr
    element: etree._Element


@dataclass
class Covariate:
    id: str
    name: str
    element: etree._Element
    reference: float | None = None


@dataclass
class Observation:
    id: str
    output: Expr
    error: Expr
    epsilon_variance: Expr
    log_transformed: bool
    element: etree._Element


@dataclass
class ReadModel:
    table: SymbolTable
    params: dict[str, Parameter] = field(default_factory=dict)
    etas: list[Eta] = field(default_factory=list)
    occasion_etas: list[Eta] = field(default_factory=list)  # inter-occasion random effects
    correlations: list[Correlation] = field(default_factory=list)
    covariates: list[Covariate] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    pkmacros: list[tuple[str, etree._Element]] = field(default_factory=list)  # (block, element)
    categories: dict[str, dict[str, float]] = field(default_factory=dict)  # covariate -> codes
    dataset_category_codes: dict[str, dict[str, float]] = field(default_factory=dict)
    epsilon_variance: dict[str, Expr] = field(default_factory=dict)
    levels: dict[tuple[str, str], str] = field(default_factory=dict)  # (block, level) -> its role
    vector_estimates: dict[str, int] = field(default_factory=dict)  # SBML id -> size of its Vector estimate

    def add(self, param: Parameter) -> Parameter:
        self.params[param.id] = param
        return param


def guard(problems: Problems, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one element's reading; an Unsupported becomes a problem and reading goes on."""
    try:
        return fn(*args)
    except Unsupported as exc:
        problems.add(exc.element, exc.message)
        return None


def declaration(table: SymbolTable, block: str | None, el: etree._Element) -> Declaration:
    decl = table.declarations.get((block or "", el.get("symbId", "")))
    if decl is None:
        raise Unsupported(el, "element without a usable symbId")
    return decl


def expression_in(element: etree._Element, scope: BlockScope) -> Expr:
    """The expression inside ``element`` (directly or wrapped in ``ct:Assign``, as in 0.9)."""
    inner = first_expression(element)
    if inner is None:
        raise Unsupported(element, f"<{local(element)}> holds no expression")
    return scope.parse(inner)
