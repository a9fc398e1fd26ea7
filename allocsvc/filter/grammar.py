"""The LALR(1) front end for go-bexpr filter expressions.

Owns the lark grammar and the module-level parser (built once at import).  It accepts the
everyday subset of go-bexpr's grammar and builds exactly the AST the PEG would; anything it
cannot vouch for (syntax errors, ``any``/``all`` expressions, keywords used as selectors,
literals ``strconv.Unquote`` rejects) is reported as ``None`` so the caller falls back to the
pigeon replica in ``peg.py``, which is the authority on acceptance and on error texts.

Whitespace is significant in go-bexpr (``x in y`` needs blanks around ``in``, ``a==b`` does
not), so it is folded into the operator terminals instead of being ignored.
"""

from __future__ import annotations

import re
import unicodedata

from lark import Lark, Token, Tree, v_args
from lark.exceptions import LarkError
from lark.visitors import Transformer_NonRecursive

from .gostr import UnquoteError, unquote
from .nodes import And, Match, Node, Op, Or, Selector, negate
from .peg import pointer_parts

_WS = r"[ \t\r\n]"
_IDENT = r"[a-zA-Z][a-zA-Z0-9_\/]*"  # "/" escaped: lark regex literals are /.../
_STRING = r'(?:"[^"]*"|`[^`]*`)'

GRAMMAR = rf"""
start: or_expr

or_expr: and_expr (_OR and_expr)*
and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negation
         | _LPAR or_expr _RPAR
         | match

match: operand _EQ operand -> eq
     | operand _NE operand -> ne
     | operand _CONTAINS operand -> contains
     | operand _NOT_CONTAINS operand -> not_contains
     | operand _MATCHES operand -> matches
     | operand _NOT_MATCHES operand -> not_matches
     | operand _IS_EMPTY -> is_empty
     | operand _IS_NOT_EMPTY -> is_not_empty
     | operand _IN operand -> in_
     | operand _NOT_IN operand -> not_in

operand: SELECTOR | DQ_STRING | BT_STRING | NUMBER

_OR: /{_WS}+or{_WS}+/
_AND: /{_WS}+and{_WS}+/
_NOT.2: /not{_WS}+/
_LPAR: /\({_WS}*/
_RPAR: /{_WS}*\)/
_EQ: /{_WS}*=={_WS}*/
_NE: /{_WS}*!={_WS}*/
_CONTAINS: /{_WS}+contains{_WS}+/
_NOT_CONTAINS: /{_WS}+not{_WS}+contains{_WS}+/
_MATCHES: /{_WS}+matches{_WS}+/
_NOT_MATCHES: /{_WS}+not{_WS}+matches{_WS}+/
_IS_EMPTY: /{_WS}+is{_WS}+empty/
_IS_NOT_EMPTY: /{_WS}+is{_WS}+not{_WS}+empty/
_IN: /{_WS}+in{_WS}+/
_NOT_IN: /{_WS}+not{_WS}+in{_WS}+/

SELECTOR: /{_IDENT}(?:\.{_IDENT}|\[{_WS}*{_STRING}{_WS}*\]|\.[0-9]+)*/
DQ_STRING: /"[^"]*"/
BT_STRING: /`[^`]*`/
NUMBER: /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?=[ \t\r\n)]|\Z)/
"""

PARSER = Lark(GRAMMAR, parser="lalr", lexer="contextual", start="start", maybe_placeholders=False)

_PART = re.compile(rf"\.({_IDENT})|\[{_WS}*({_STRING}){_WS}*\]|\.([0-9]+)")
_POINTER_SEGMENT = re.compile(r"/([^/\"]+)")


class _UnsureError(Exception):
    """The LALR result might differ from go-bexpr's; defer to the PEG replica."""


def _selector_parts(text: str) -> tuple[str, ...]:
    """Split a SELECTOR token into its path parts (index strings are unquoted)."""
    head = re.match(_IDENT, text)
    assert head is not None
    parts = [head.group(0)]
    pos = head.end()
    while pos < len(text):
        m = _PART.match(text, pos)
        assert m is not None
        ident, literal, digits = m.groups()
        if ident is not None:
            parts.append(ident)
        elif literal is not None:
            try:
                parts.append(unquote(literal))
            except UnquoteError:
                raise _UnsureError from None
        else:
            parts.append(digits)
        pos = m.end()
    return tuple(parts)


def _pointer(text: str) -> Selector | None:
    """The JSON-pointer selector a ``"..."`` token denotes, or None if it is a plain string."""
    body = text[1:-1]
    segments: list[str] = []
    pos = 0
    while pos < len(body):
        m = _POINTER_SEGMENT.match(body, pos)
        if m is None:
            return None
        seg = m.group(1)
        if not all(c in "-_.~:|" or unicodedata.category(c)[0] in "LN" for c in seg):
            return None
        segments.append(seg)
        pos = m.end()
    return Selector(pointer_parts(segments), pointer=True)


def _as_selector(tok: Token) -> Selector:
    if tok.type == "SELECTOR":
        return Selector(_selector_parts(str(tok)))
    if tok.type == "DQ_STRING":
        sel = _pointer(str(tok))
        if sel is not None:
            return sel
    raise _UnsureError


def _as_value(tok: Token) -> str:
    text = str(tok)
    if tok.type == "SELECTOR":
        return ".".join(_selector_parts(text))
    if tok.type == "NUMBER":
        return text
    if tok.type == "DQ_STRING":
        sel = _pointer(text)
        if sel is not None:
            return str(sel)
    try:
        return unquote(text)
    except UnquoteError:
        raise _UnsureError from None


def _chain(kind: type[And] | type[Or], items: list[Node]) -> Node:
    node = items[-1]
    for item in reversed(items[:-1]):
        node = kind(item, node)
    return node


@v_args(inline=True)
class _ToAst(Transformer_NonRecursive[Token, Node]):
    """Turn the lark tree into ``nodes`` AST, right-nesting and/or like the PEG does."""

    def start(self, expr: Node) -> Node:
        return expr

    def or_expr(self, *items: Node) -> Node:
        return _chain(Or, list(items))

    def and_expr(self, *items: Node) -> Node:
        return _chain(And, list(items))

    def negation(self, operand: Node) -> Node:
        return negate(operand)

    def operand(self, tok: Token) -> Token:
        return tok

    def _sov(self, sel: Token, op: Op, value: Token) -> Match:
        return Match(_as_selector(sel), op, _as_value(value))

    def eq(self, sel: Token, value: Token) -> Match:
        return self._sov(sel, Op.EQUAL, value)

    def ne(self, sel: Token, value: Token) -> Match:
        return self._sov(sel, Op.NOT_EQUAL, value)

    def contains(self, sel: Token, value: Token) -> Match:
        return self._sov(sel, Op.IN, value)

    def not_contains(self, sel: Token, value: Token) -> Match:
        return self._sov(sel, Op.NOT_IN, value)

    def matches(self, sel: Token, value: Token) -> Match:
        return self._sov(sel, Op.MATCHES, value)

    def not_matches(self, sel: Token, value: Token) -> Match:
        return self._sov(sel, Op.NOT_MATCHES, value)

    def is_empty(self, sel: Token) -> Match:
        return Match(_as_selector(sel), Op.IS_EMPTY, None)

    def is_not_empty(self, sel: Token) -> Match:
        return Match(_as_selector(sel), Op.IS_NOT_EMPTY, None)

    def in_(self, value: Token, sel: Token) -> Match:
        return Match(_as_selector(sel), Op.IN, _as_value(value))

    def not_in(self, value: Token, sel: Token) -> Match:
        return Match(_as_selector(sel), Op.NOT_IN, _as_value(value))


_TO_AST = _ToAst()


def parse_fast(expression: str) -> Node | None:
    """Parse with the LALR grammar; None means "ask the PEG replica" (error or uncertain)."""
    text = expression.strip(" \t\r\n")
    if not text:
        return None
    try:
        tree: Tree[Token] = PARSER.parse(text)
        return _TO_AST.transform(tree)
    except (LarkError, _UnsureError):
        return None
