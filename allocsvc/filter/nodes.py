"""The filter AST: the same shapes go-bexpr's ``grammar`` package builds.

Owns the node types shared by the LALR front end (``grammar.py``), the PEG replica
(``peg.py``) and the evaluator (``bexpr.py``).  Nodes are immutable and compare by value, so
both parsers can be checked against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Op(Enum):
    """Match operators (``contains``/``not contains`` parse to IN/NOT_IN like go-bexpr)."""

    EQUAL = "Equal"
    NOT_EQUAL = "Not Equal"
    IN = "In"
    NOT_IN = "Not In"
    IS_EMPTY = "Is Empty"
    IS_NOT_EMPTY = "Is Not Empty"
    MATCHES = "Matches"
    NOT_MATCHES = "Not Matches"


# Result of a match whose selector names a key missing from a Go map (NotPresentDisposition).
NOT_PRESENT_RESULT: dict[Op, bool] = {
    Op.EQUAL: False,
    Op.NOT_EQUAL: True,
    Op.IN: False,
    Op.NOT_IN: True,
    Op.IS_EMPTY: True,
    Op.IS_NOT_EMPTY: False,
    Op.MATCHES: False,
    Op.NOT_MATCHES: True,
}


@dataclass(frozen=True, slots=True)
class Selector:
    """A selector path; ``pointer`` marks the quoted JSON-pointer form (``"/a/b"``)."""

    path: tuple[str, ...]
    pointer: bool = False

    def __str__(self) -> str:
        """go-bexpr's ``Selector.String()``: dotted for bexpr selectors, ``/``-joined for pointers."""
        if not self.path:
            return ""
        return "/".join(self.path) if self.pointer else ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Match:
    """``<selector> <op> <value>``; ``raw`` is None for ``is empty``/``is not empty``."""

    selector: Selector
    op: Op
    raw: str | None


@dataclass(frozen=True, slots=True)
class Not:
    """Logical negation."""

    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    """Short-circuit conjunction."""

    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    """Short-circuit disjunction."""

    left: Node
    right: Node


class BindMode(Enum):
    """How the placeholders of an ``any``/``all`` expression are bound."""

    DEFAULT = "Default"
    INDEX = "Index"
    VALUE = "Value"
    INDEX_AND_VALUE = "Index & Value"


@dataclass(frozen=True, slots=True)
class Binding:
    """Placeholder names of a collection expression (``as k, v``)."""

    mode: BindMode
    default: str = ""
    index: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True)
class Collection:
    """``any|all <selector> as <binding> { <inner> }``."""

    all: bool
    selector: Selector
    binding: Binding
    inner: Node


Node = Match | Not | And | Or | Collection


def negate(operand: Node) -> Node:
    """go-bexpr's ``not`` action: ``not not X`` collapses to ``X``."""
    if isinstance(operand, Not):
        return operand.operand
    return Not(operand)
