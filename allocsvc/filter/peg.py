"""A faithful replay of go-bexpr's pigeon-generated PEG parser (go-bexpr v0.1.13/v0.1.14).

Owns the *authoritative* answer to "does go-bexpr accept this expression, and if not, what
exact error text does it return?".  The LALR parser in ``grammar.py`` is the fast path; this
module runs when the LALR parser rejects an expression (or cannot express it, e.g. ``any``/
``all`` collection expressions or keywords used as selectors such as ``not == 3``).

What is reproduced from the generated parser (``grammar/grammar.go``):

* the grammar of ``grammar/grammar.peg`` rule for rule, with pigeon's ordered choice,
  possessive repetition, ``&``/``!`` predicates and ``&{...}`` error predicates;
* pigeon's error bookkeeping: ``failAt`` (farthest failure offset + expected set, with
  inversion inside ``!``), ``addErrAt`` prefixes ``line:col (byteoffset): rule <name>``,
  ``no match found, expected: ...`` with sorted, de-duplicated expectations joined by
  ``, `` / `` or ``, ``!.`` rendered as ``EOF``, and error de-duplication joined by ``\\n``;
* pigeon's position arithmetic (columns count runes, a newline's own position is on the next
  line at column 0, offsets are UTF-8 byte offsets).

Rule results are memoised per (rule, position, inversion flag).  That changes nothing
observable: ``failAt`` effects are an order-independent union at the farthest offset and
errors are de-duplicated keeping first occurrence, so replays would only add duplicates.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable
from typing import cast

from .gostr import UnquoteError, quote, unquote
from .nodes import (
    And,
    Binding,
    BindMode,
    Collection,
    Match,
    Node,
    Op,
    Or,
    Selector,
    negate,
)

Result = tuple[bool, object, int]
Expr = Callable[["_State", int], Result]
ActionFn = Callable[["_State", int, int, object], tuple[object, str | None]]
CodeFn = Callable[["_State", int], tuple[bool, str | None]]


class PegSyntaxError(Exception):
    """go-bexpr rejected the expression; ``str()`` is the exact error text it returns."""


class _State:
    """Mutable parser state mirroring pigeon's ``parser`` struct."""

    __slots__ = (
        "errs",
        "expected",
        "invert",
        "max_off",
        "max_pos",
        "memo",
        "n",
        "pos",
        "rstack",
        "text",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.pos: list[tuple[int, int, int]] = []
        line, col, off = 1, 0, 0
        for k in range(self.n + 1):
            col += 1
            if k < self.n and text[k] == "\n":
                line += 1
                col = 0
            self.pos.append((line, col, off))
            if k < self.n:
                off += len(text[k].encode("utf-8", "surrogatepass"))
        self.invert = False
        self.max_off = 0
        self.max_pos = (1, 1, 0)
        self.expected: list[str] = []
        self.errs: list[str] = []
        self.rstack: list[_Rule] = []
        self.memo: dict[tuple[str, int, bool], Result] = {}

    def fail_at(self, fail: bool, i: int, want: str) -> None:
        """pigeon ``failAt``: track the farthest failure and what was expected there."""
        if fail == self.invert:
            pos = self.pos[i]
            if pos[2] < self.max_off:
                return
            if pos[2] > self.max_off:
                self.max_off = pos[2]
                self.max_pos = pos
                self.expected = []
            self.expected.append("!" + want if self.invert else want)

    def add_err_at(self, message: str, i: int) -> None:
        """pigeon ``addErrAt``: ``line:col (offset): rule <display name>: <message>``."""
        self.add_err_pos(message, self.pos[i])

    def add_err_pos(self, message: str, pos: tuple[int, int, int]) -> None:
        prefix = f"{pos[0]}:{pos[1]} ({pos[2]})"
        if self.rstack:
            prefix += ": rule " + self.rstack[-1].display
        self.errs.append(prefix + ": " + message)


class _Rule:
    """A named grammar rule; ``display`` is the pigeon display name used in error prefixes."""

    __slots__ = ("display", "expr", "name")

    def __init__(self, name: str, display: str | None = None) -> None:
        self.name = name
        self.display = f'"{display}"' if display is not None else name
        self.expr: Expr | None = None

    def ref(self) -> Expr:
        """A plain closure calling this rule (plain Python calls keep deep nesting off the C stack)."""
        rule = self
        name = self.name

        def parse(p: _State, i: int) -> Result:
            key = (name, i, p.invert)
            hit = p.memo.get(key)
            if hit is not None:
                return hit
            expr = rule.expr
            assert expr is not None
            p.rstack.append(rule)
            res = expr(p, i)
            p.rstack.pop()
            p.memo[key] = res
            return res

        return parse


def _lit(val: str) -> Expr:
    want = quote(val)
    size = len(val)

    def parse(p: _State, i: int) -> Result:
        if p.text.startswith(val, i):
            p.fail_at(True, i, want)
            return True, val, i + size
        p.fail_at(False, i, want)
        return False, None, i

    return parse


def _cls(val: str, pred: Callable[[str], bool]) -> Expr:
    def parse(p: _State, i: int) -> Result:
        if i < p.n and pred(p.text[i]):
            p.fail_at(True, i, val)
            return True, p.text[i], i + 1
        p.fail_at(False, i, val)
        return False, None, i

    return parse


def _any(p: _State, i: int) -> Result:
    if i >= p.n:
        p.fail_at(False, i, ".")
        return False, None, i
    p.fail_at(True, i, ".")
    return True, p.text[i], i + 1


def _seq(*exprs: Expr) -> Expr:
    def parse(p: _State, i: int) -> Result:
        vals: list[object] = []
        j = i
        for e in exprs:
            ok, v, j = e(p, j)
            if not ok:
                return False, None, i
            vals.append(v)
        return True, vals, j

    return parse


def _choice(*alts: Expr) -> Expr:
    def parse(p: _State, i: int) -> Result:
        for alt in alts:
            res = alt(p, i)
            if res[0]:
                return res
        return False, None, i

    return parse


def _opt(e: Expr) -> Expr:
    def parse(p: _State, i: int) -> Result:
        ok, v, j = e(p, i)
        return (True, v, j) if ok else (True, None, i)

    return parse


def _star(e: Expr) -> Expr:
    def parse(p: _State, i: int) -> Result:
        vals: list[object] = []
        while True:
            ok, v, j = e(p, i)
            if not ok:
                return True, vals, i
            vals.append(v)
            i = j

    return parse


def _plus(e: Expr) -> Expr:
    inner = _star(e)

    def parse(p: _State, i: int) -> Result:
        _ok, v, j = inner(p, i)
        if not cast(list[object], v):
            return False, None, i
        return True, v, j

    return parse


def _and(e: Expr) -> Expr:
    def parse(p: _State, i: int) -> Result:
        ok, _, _ = e(p, i)
        return ok, None, i

    return parse


def _not(e: Expr) -> Expr:
    def parse(p: _State, i: int) -> Result:
        p.invert = not p.invert
        ok, _, _ = e(p, i)
        p.invert = not p.invert
        return not ok, None, i

    return parse


def _code_error(message: str) -> Expr:
    """``&{ return false, errors.New(message) }``: record an error at the current position, fail."""

    def parse(p: _State, i: int) -> Result:
        p.add_err_at(message, i)
        return False, None, i

    return parse


def _action(e: Expr, fn: ActionFn) -> Expr:
    def parse(p: _State, i: int) -> Result:
        ok, v, j = e(p, i)
        if not ok:
            return False, None, i
        val, err = fn(p, i, j, v)
        if err is not None:
            p.add_err_at(err, i)
        return True, val, j

    return parse


def _pick(index: int) -> ActionFn:
    def fn(p: _State, start: int, end: int, v: object) -> tuple[object, str | None]:
        return cast(list[object], v)[index], None

    return fn


def _const(value: object) -> ActionFn:
    def fn(p: _State, start: int, end: int, v: object) -> tuple[object, str | None]:
        return value, None

    return fn


def _text(p: _State, start: int, end: int, v: object) -> tuple[object, str | None]:
    return p.text[start:end], None


def _is_ptr_char(c: str) -> bool:
    return c in "-_.~:|" or unicodedata.category(c)[0] in "LN"


def _build() -> Expr:
    """Build the rule graph of go-bexpr's ``grammar.peg`` and return the ``Input`` rule."""
    names: dict[str, tuple[str, str | None]] = {
        "Input": ("Input", None),
        "OrExpression": ("OrExpression", None),
        "AndExpression": ("AndExpression", None),
        "NotExpression": ("NotExpression", None),
        "CollectionExpression": ("CollectionExpression", None),
        "CollectionIdentifiers": ("CollectionIdentifiers", "collection-identifiers"),
        "CollectionOpAny": ("CollectionOpAny", None),
        "CollectionOpAll": ("CollectionOpAll", None),
        "ParenthesizedExpression": ("ParenthesizedExpression", "grouping"),
        "MatchExpression": ("MatchExpression", "match"),
        "MatchSelectorOpValue": ("MatchSelectorOpValue", "match"),
        "MatchSelectorOp": ("MatchSelectorOp", "match"),
        "MatchValueOpSelector": ("MatchValueOpSelector", "match"),
        "Selector": ("Selector", "selector"),
        "JsonPointerSegment": ("JsonPointerSegment", None),
        "Identifier": ("Identifier", None),
        "SelectorOrIndex": ("SelectorOrIndex", None),
        "IndexExpression": ("IndexExpression", "index"),
        "Value": ("Value", "value"),
        "NumberLiteral": ("NumberLiteral", "number"),
        "AfterNumbers": ("AfterNumbers", None),
        "IntegerOrFloat": ("IntegerOrFloat", None),
        "StringLiteral": ("StringLiteral", "string"),
        "RawStringChar": ("RawStringChar", None),
        "DoubleStringChar": ("DoubleStringChar", None),
        "_": ("_", "whitespace"),
        "EOF": ("EOF", None),
    }
    r = {key: _Rule(name, display) for key, (name, display) in names.items()}
    x: dict[str, Expr] = {key: rule.ref() for key, rule in r.items()}
    ws = x["_"]
    ows = _opt(ws)
    eof = x["EOF"]

    def op_rule(name: str, words: list[str], op: Op, lead_optional: bool = False) -> None:
        parts: list[Expr] = []
        if lead_optional:
            parts = [ows, _lit(words[0]), ows]
        else:
            for w in words:
                parts += [ws, _lit(w)]
            if name not in ("MatchIsEmpty", "MatchIsNotEmpty"):
                parts.append(ws)
        rule = _Rule(name)
        rule.expr = _action(_seq(*parts), _const(op))
        r[name] = rule
        x[name] = rule.ref()

    op_rule("MatchEqual", ["=="], Op.EQUAL, lead_optional=True)
    op_rule("MatchNotEqual", ["!="], Op.NOT_EQUAL, lead_optional=True)
    op_rule("MatchIsEmpty", ["is", "empty"], Op.IS_EMPTY)
    op_rule("MatchIsNotEmpty", ["is", "not", "empty"], Op.IS_NOT_EMPTY)
    op_rule("MatchIn", ["in"], Op.IN)
    op_rule("MatchNotIn", ["not", "in"], Op.NOT_IN)
    op_rule("MatchContains", ["contains"], Op.IN)
    op_rule("MatchNotContains", ["not", "contains"], Op.NOT_IN)
    op_rule("MatchMatches", ["matches"], Op.MATCHES)
    op_rule("MatchNotMatches", ["not", "matches"], Op.NOT_MATCHES)

    def or_action(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        vals = cast(list[Node], v)
        return Or(vals[0], vals[4]), None

    def and_action(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        vals = cast(list[Node], v)
        return And(vals[0], vals[4]), None

    def not_action(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        return negate(cast(list[Node], v)[2]), None

    r["Input"].expr = _choice(
        _action(_seq(ows, _lit("("), ows, x["OrExpression"], ows, _lit(")"), ows, eof), _pick(3)),
        _action(_seq(ows, x["OrExpression"], ows, eof), _pick(1)),
    )
    r["OrExpression"].expr = _choice(
        _action(_seq(x["AndExpression"], ws, _lit("or"), ws, x["OrExpression"]), or_action),
        x["AndExpression"],
        x["CollectionExpression"],
    )
    r["AndExpression"].expr = _choice(
        _action(_seq(x["NotExpression"], ws, _lit("and"), ws, x["AndExpression"]), and_action),
        x["NotExpression"],
    )
    r["NotExpression"].expr = _choice(
        _action(_seq(_lit("not"), ws, x["NotExpression"]), not_action),
        x["ParenthesizedExpression"],
    )

    def collection_action(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        vals = cast(list[object], v)
        return (
            Collection(
                all=cast(bool, vals[0]),
                selector=cast(Selector, vals[1]),
                binding=cast(Binding, vals[5]),
                inner=cast(Node, vals[9]),
            ),
            None,
        )

    r["CollectionExpression"].expr = _action(
        _seq(
            _choice(x["CollectionOpAny"], x["CollectionOpAll"]),
            x["Selector"],
            ws,
            _lit("as"),
            ws,
            x["CollectionIdentifiers"],
            ows,
            _lit("{"),
            ows,
            x["OrExpression"],
            ows,
            _lit("}"),
        ),
        collection_action,
    )

    def bind(mode: BindMode, **which: int) -> ActionFn:
        def fn(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
            vals = cast(list[object], v) if isinstance(v, list) else [v]
            fields = {k: cast(str, vals[idx]) for k, idx in which.items()}
            return Binding(mode, **fields), None

        return fn

    ident = x["Identifier"]
    r["CollectionIdentifiers"].expr = _choice(
        _action(_seq(ident, ows, _lit(","), ows, ident), bind(BindMode.INDEX_AND_VALUE, index=0, value=4)),
        _action(_seq(ident, ows, _lit(","), ows, _lit("_")), bind(BindMode.INDEX, index=0)),
        _action(_seq(_lit("_"), ows, _lit(","), ows, ident), bind(BindMode.VALUE, value=4)),
        _action(ident, bind(BindMode.DEFAULT, default=0)),
    )
    r["CollectionOpAny"].expr = _action(_seq(_lit("any"), ws), _const(False))
    r["CollectionOpAll"].expr = _action(_seq(_lit("all"), ws), _const(True))

    r["ParenthesizedExpression"].expr = _choice(
        _action(_seq(_lit("("), ows, x["OrExpression"], ows, _lit(")")), _pick(2)),
        x["MatchExpression"],
        _seq(_lit("("), ows, x["OrExpression"], ows, _not(_lit(")")), _code_error("Unmatched parentheses")),
    )
    r["MatchExpression"].expr = _choice(
        x["MatchSelectorOpValue"], x["MatchSelectorOp"], x["MatchValueOpSelector"]
    )

    def match_sov(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        vals = cast(list[object], v)
        return Match(cast(Selector, vals[0]), cast(Op, vals[1]), cast(str, vals[2])), None

    def match_so(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        vals = cast(list[object], v)
        return Match(cast(Selector, vals[0]), cast(Op, vals[1]), None), None

    def match_vos(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        vals = cast(list[object], v)
        return Match(cast(Selector, vals[2]), cast(Op, vals[1]), cast(str, vals[0])), None

    r["MatchSelectorOpValue"].expr = _action(
        _seq(
            x["Selector"],
            _choice(
                x["MatchEqual"],
                x["MatchNotEqual"],
                x["MatchContains"],
                x["MatchNotContains"],
                x["MatchMatches"],
                x["MatchNotMatches"],
            ),
            x["Value"],
        ),
        match_sov,
    )
    r["MatchSelectorOp"].expr = _action(
        _seq(x["Selector"], _choice(x["MatchIsEmpty"], x["MatchIsNotEmpty"])), match_so
    )
    in_ops = _choice(x["MatchIn"], x["MatchNotIn"])
    r["MatchValueOpSelector"].expr = _choice(
        _action(_seq(x["Value"], in_ops, x["Selector"]), match_vos),
        _seq(x["Value"], in_ops, _not(x["Selector"]), _code_error("Invalid selector")),
    )

    def bexpr_selector(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        vals = cast(list[object], v)
        return Selector((cast(str, vals[0]), *cast(list[str], vals[1]))), None

    def pointer_selector(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        segs = cast(list[str], cast(list[object], v)[1])
        return Selector(pointer_parts(segs), pointer=True), None

    r["Selector"].expr = _choice(
        _action(_seq(ident, _star(x["SelectorOrIndex"])), bexpr_selector),
        _action(_seq(_lit('"'), _star(x["JsonPointerSegment"]), _lit('"')), pointer_selector),
    )

    def segment(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        return p.text[s + 1 : e], None

    r["JsonPointerSegment"].expr = _action(
        _seq(_lit("/"), _plus(_cls("[\\pL\\pN-_.~:|]", _is_ptr_char))), segment
    )
    r["Identifier"].expr = _action(
        _seq(
            _cls("[a-zA-Z]", lambda c: c.isascii() and c.isalpha()),
            _star(_cls("[a-zA-Z0-9_/]", lambda c: (c.isascii() and c.isalnum()) or c in "_/")),
        ),
        _text,
    )
    digit = _cls("[0-9]", lambda c: "0" <= c <= "9")

    def dotted_index(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        return p.text[s + 1 : e], None

    r["SelectorOrIndex"].expr = _choice(
        _action(_seq(_lit("."), ident), _pick(1)),
        x["IndexExpression"],
        _action(_seq(_lit("."), _plus(digit)), dotted_index),
    )
    string = x["StringLiteral"]
    r["IndexExpression"].expr = _choice(
        _action(_seq(_lit("["), ows, string, ows, _lit("]")), _pick(2)),
        _seq(_lit("["), ows, _not(string), _code_error("Invalid index")),
        _seq(_lit("["), ows, string, ows, _not(_lit("]")), _code_error("Unclosed index expression")),
    )

    def value_from_selector(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        return str(cast(Selector, v)), None

    def identity(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        return v, None

    r["Value"].expr = _choice(
        _action(x["Selector"], value_from_selector),
        _action(x["NumberLiteral"], identity),
        _action(string, identity),
    )
    minus = _opt(_lit("-"))
    r["NumberLiteral"].expr = _choice(
        _action(_seq(minus, x["IntegerOrFloat"], _and(x["AfterNumbers"])), _text),
        _seq(minus, x["IntegerOrFloat"], _not(x["AfterNumbers"]), _code_error("Invalid number literal")),
    )
    r["AfterNumbers"].expr = _and(_choice(ws, eof, _lit(")")))
    r["IntegerOrFloat"].expr = _seq(
        _choice(_lit("0"), _seq(_cls("[1-9]", lambda c: "1" <= c <= "9"), _star(digit))),
        _opt(_seq(_lit("."), _plus(digit))),
    )

    def unquote_action(p: _State, s: int, e: int, v: object) -> tuple[object, str | None]:
        try:
            return unquote(p.text[s:e]), None
        except UnquoteError as exc:
            return "", str(exc)

    raw_char = x["RawStringChar"]
    dq_char = x["DoubleStringChar"]
    r["StringLiteral"].expr = _choice(
        _action(
            _choice(_seq(_lit("`"), _star(raw_char), _lit("`")), _seq(_lit('"'), _star(dq_char), _lit('"'))),
            unquote_action,
        ),
        _seq(
            _choice(_seq(_lit("`"), _star(raw_char)), _seq(_lit('"'), _star(dq_char))),
            eof,
            _code_error("Unterminated string literal"),
        ),
    )
    r["RawStringChar"].expr = _seq(_not(_lit("`")), _any)
    r["DoubleStringChar"].expr = _seq(_not(_lit('"')), _any)
    r["_"].expr = _plus(_cls("[ \\t\\r\\n]", lambda c: c in " \t\r\n"))
    r["EOF"].expr = _not(_any)
    return x["Input"]


def pointer_parts(segments: list[str]) -> tuple[str, ...]:
    """``pointerstructure.Parse("/" + join(segments, "/")).Parts`` (``~1`` -> ``/``, ``~0`` -> ``~``)."""
    if not segments:
        return ("",)
    return tuple(seg.replace("~1", "/").replace("~0", "~") for seg in segments)


_INPUT = _build()


def _expected_message(expected: list[str]) -> str:
    seen = set(expected)
    eof = "!." in seen
    seen.discard("!.")
    items = sorted(seen, key=lambda w: w.encode("utf-8"))
    if eof:
        items.append("EOF")
    if not items:
        joined = ""
    elif len(items) == 1:
        joined = items[0]
    else:
        joined = ", ".join(items[:-1]) + " or " + items[-1]
    return "no match found, expected: " + joined


_RECURSION_LIMIT = 50_000


def parse(text: str) -> Node:
    """Parse like ``grammar.Parse("", []byte(text))``; raise PegSyntaxError with go-bexpr's text.

    Rules recurse once per nesting level, so the interpreter's recursion limit is raised for
    the duration (plain closures, so no C stack is consumed).  Expressions nested beyond that
    get a PegSyntaxError that go-bexpr, with its growable Go stack, would not produce.
    """
    p = _State(text)
    old_limit = sys.getrecursionlimit()
    if old_limit < _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)
    try:
        ok, val, _ = _INPUT(p, 0)
    except RecursionError:
        raise PegSyntaxError("expression nests too deeply") from None
    finally:
        if old_limit < _RECURSION_LIMIT:
            sys.setrecursionlimit(old_limit)
    if not ok and not p.errs:
        p.rstack.clear()
        p.add_err_pos(_expected_message(p.expected), p.max_pos)
    if p.errs:
        unique = list(dict.fromkeys(p.errs))
        raise PegSyntaxError("\n".join(unique))
    return cast(Node, val)
