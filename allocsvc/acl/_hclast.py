"""An HCL1-shaped syntax tree for ACL policy text, built the way ``hashicorp/hcl`` v1 builds it.

Owns: the node types (``ObjectList``, ``Item``, ``ObjectType``, ``ListType``, ``Literal``, named after
HCL1's ``ast`` package) and ``parse_rules``, which picks HCL or JSON by the first non-space
character as HCL1's ``lexMode`` does.

- HCL goes through pyhcl, reusing one module-level ``HclParser`` (building one costs ~20-70 ms).
  pyhcl normally folds blocks into dicts and silently merges duplicate labels; here its
  ``objectlist_flat`` hook is replaced on that instance so every item survives, in source order,
  and the tree keeps HCL1's multi-key items (``namespace "a" {}`` is keys ``("namespace", "a")``).
  pyhcl accepts bare identifiers as values (``policy = read``); HCL1 rejects them, so identifiers
  are tagged by a lexer wrapper and refused here.
- JSON goes through a small parser mirroring ``hcl/json/parser``: it tolerates the same trailing
  commas HCL1 tolerates, keeps duplicate keys, ignores text after the root object, and then
  applies HCL1's ``flattenObjects`` (nested objects of objects become multi-key items).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Final, Protocol

from hcl.lexer import Lexer  # type: ignore[import-untyped,unused-ignore]
from hcl.parser import HclParser  # type: ignore[import-untyped,unused-ignore]


class HclSyntaxError(Exception):
    """The policy text is not valid HCL1 or JSON; ``str()`` is the parser's message."""


@dataclass(frozen=True, slots=True)
class Literal:
    """A scalar. ``kind`` is HCL1's token type; ``text`` is what ``decodeString`` would yield."""

    kind: str  # "STRING" | "HEREDOC" | "NUMBER" | "FLOAT" | "BOOL" | "NULL"
    text: str


@dataclass(slots=True)
class ObjectType:
    """``{ ... }``."""

    items: list[Item]


@dataclass(slots=True)
class ListType:
    """``[ ... ]``."""

    elems: list[Node]


@dataclass(slots=True)
class Item:
    """One ``keys... = val`` or ``keys... { }`` entry (HCL1 ``ObjectItem``)."""

    keys: tuple[str, ...]
    val: Node


@dataclass(slots=True)
class ObjectList:
    """A sequence of items: a file body, or the result of ``Filter``."""

    items: list[Item]


Node = Literal | ObjectType | ListType


def go_type(node: Node | Item | ObjectList) -> str:
    """The Go ``%T`` of the equivalent HCL1 AST node."""
    return {
        Literal: "*ast.LiteralType",
        ObjectType: "*ast.ObjectType",
        ListType: "*ast.ListType",
        Item: "*ast.ObjectItem",
        ObjectList: "*ast.ObjectList",
    }[type(node)]


def parse_rules(rules: str) -> ObjectList:
    """Parse policy text into the root item list; raises HclSyntaxError."""
    try:
        for ch in rules:
            if ch.isspace():
                continue
            if ch == "{":
                return _JsonParser(rules).parse()
            break
        return _parse_hcl(rules)
    except RecursionError:
        raise HclSyntaxError("nesting too deep") from None


# --- HCL through pyhcl --------------------------------------------------------------------------


class _Items(list[tuple[object, object]]):
    """An HCL object body as pyhcl produced it, with duplicates kept."""


class _Ident(str):
    """A bare identifier token value (HCL1 only allows these as keys)."""

    __slots__ = ()


def _keep_items(lt: list[tuple[object, object]], replace: bool) -> _Items:
    return _Items(lt)


class _Token(Protocol):
    type: str
    value: object


class _IdentTaggingLexer:
    """Wraps pyhcl's lexer so IDENTIFIER token values arrive as ``_Ident``."""

    def __init__(self) -> None:
        self._lexer = Lexer()

    def input(self, text: str) -> None:
        self._lexer.input(text)

    def token(self) -> _Token | None:
        tok: _Token | None = self._lexer.token()
        if tok is not None and tok.type == "IDENTIFIER" and isinstance(tok.value, str):
            tok.value = _Ident(tok.value)
        return tok


_PARSER: Final = HclParser()
_PARSER.objectlist_flat = _keep_items  # instance attribute shadows the method (same grammar)
_PARSER_LOCK: Final = threading.Lock()  # the ply parser keeps its stacks on the instance


def _parse_hcl(rules: str) -> ObjectList:
    try:
        with _PARSER_LOCK:
            top = _PARSER.yacc.parse(rules, lexer=_IdentTaggingLexer())
    except RecursionError:
        raise
    except Exception as exc:  # pyhcl: ValueError for syntax, and whatever its arithmetic raises
        raise HclSyntaxError(str(exc)) from None
    if not isinstance(top, _Items):
        raise HclSyntaxError("root should be an object")
    return ObjectList([_hcl_item(k, v) for k, v in top])


def _hcl_key(key: object) -> str:
    if isinstance(key, str):
        return str(key)
    raise HclSyntaxError(f"expected: IDENT | STRING got: {key!r}")


def _hcl_item(key: object, val: object) -> Item:
    keys = [_hcl_key(key)]
    # pyhcl builds `a "b" "c" { }` as ("a", {"b": {"c": <body>}}) with plain one-key dicts;
    # bodies are _Items and `{}` is an empty plain dict.
    while type(val) is dict and len(val) == 1:
        ((label, val),) = val.items()
        keys.append(_hcl_key(label))
    return Item(tuple(keys), _hcl_value(val, in_list=False))


def _hcl_value(val: object, *, in_list: bool) -> Node:
    if isinstance(val, _Items):
        return ObjectType([_hcl_item(k, v) for k, v in val])
    if isinstance(val, dict):
        return ObjectType([_hcl_item(k, v) for k, v in val.items()])
    if isinstance(val, list):
        return ListType([_hcl_value(v, in_list=True) for v in val])
    if isinstance(val, bool):
        return Literal("BOOL", "true" if val else "false")
    if isinstance(val, int):
        return Literal("NUMBER", str(val))
    if isinstance(val, float):
        return Literal("FLOAT", repr(val))
    if isinstance(val, _Ident):
        if in_list:
            raise HclSyntaxError("unexpected token while parsing list: IDENT")
        raise HclSyntaxError(f"Unknown token: IDENT {val}")
    if isinstance(val, str):
        return Literal("STRING", str(val))
    if isinstance(val, tuple):
        raise HclSyntaxError(f"unsupported expression: {' '.join(map(str, val))}")
    raise HclSyntaxError(f"unsupported value: {val!r}")


# --- JSON, mirroring hcl/json/parser ------------------------------------------------------------

_JSON_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?P<frac>\.[0-9]+)?(?P<exp>[eE][+-]?[0-9]+)?)
  | (?P<word>true|false|null)
  | (?P<punct>[{}\[\]:,])
    """,
    re.VERBOSE,
)


class _JsonParser:
    """Recursive descent with HCL1's JSON leniencies (see module docstring)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._tok = ("", "")  # (type, text) of the last scanned token

    def parse(self) -> ObjectList:
        kind, _ = self._scan()
        if kind != "LBRACE":
            raise HclSyntaxError(f"Expected object, got unknown token: {kind}")
        root = self._object_type()
        items = _flatten(root.items)
        return ObjectList(items)

    def _scan(self) -> tuple[str, str]:
        while True:
            if self._pos >= len(self._text):
                self._tok = ("EOF", "")
                return self._tok
            m = _JSON_TOKEN.match(self._text, self._pos)
            if m is None:
                raise HclSyntaxError(f"illegal char {self._text[self._pos]!r} at offset {self._pos}")
            self._pos = m.end()
            if m.group("ws"):
                continue
            text = m.group(0)
            if m.group("string"):
                self._tok = ("STRING", text)
            elif m.group("number"):
                self._tok = ("FLOAT" if m.group("frac") or m.group("exp") else "NUMBER", text)
            elif m.group("word"):
                self._tok = ("NULL" if text == "null" else "BOOL", text)
            else:
                self._tok = (
                    {"{": "LBRACE", "}": "RBRACE", "[": "LBRACK", "]": "RBRACK", ":": "COLON", ",": "COMMA"}[
                        text
                    ],
                    text,
                )
            return self._tok

    @staticmethod
    def _unquote(text: str) -> str:
        try:
            value = json.loads(text, strict=False)
        except ValueError as exc:
            raise HclSyntaxError(f"invalid string literal {text}: {exc}") from None
        assert isinstance(value, str)
        return value

    def _object_type(self) -> ObjectType:
        items: list[Item] = []
        error: HclSyntaxError | None = None
        try:
            while True:
                item = self._object_item()
                if item is None:
                    break
                items.append(item)
                if self._scan()[0] != "COMMA":
                    break
        except HclSyntaxError as exc:
            error = exc
        if self._tok[0] != "RBRACE":
            if error is not None:
                raise error
            raise HclSyntaxError(f"unexpected token while parsing object: {self._tok[0]}")
        return ObjectType(items)

    def _object_item(self) -> Item | None:
        keys: list[str] = []
        while True:
            kind, text = self._scan()
            if kind == "EOF":
                return None
            if kind == "STRING":
                keys.append(self._unquote(text))
            elif kind == "COLON":
                if not keys:
                    raise HclSyntaxError(f"expected: STRING got: {kind}")
                break
            else:
                raise HclSyntaxError(f"expected: STRING got: {kind}")
        return Item(tuple(keys), self._object_value())

    def _object_value(self) -> Node:
        kind, text = self._scan()
        if kind in ("NUMBER", "FLOAT", "BOOL", "NULL"):
            return Literal(kind, text)
        if kind == "STRING":
            return Literal(kind, self._unquote(text))
        if kind == "LBRACE":
            return self._object_type()
        if kind == "LBRACK":
            return self._list_type()
        if kind == "EOF":
            raise HclSyntaxError("EOF token found")
        raise HclSyntaxError(f"Expected object value, got unknown token: {kind} {text}")

    def _list_type(self) -> ListType:
        elems: list[Node] = []
        while True:
            kind, text = self._scan()
            if kind in ("NUMBER", "FLOAT"):
                elems.append(Literal(kind, text))
            elif kind == "STRING":
                elems.append(Literal(kind, self._unquote(text)))
            elif kind == "LBRACE":
                elems.append(self._object_type())
            elif kind in ("COMMA", "BOOL", "LBRACK"):
                continue  # HCL1 skips commas and (by a TODO) booleans and nested-list brackets
            elif kind == "RBRACK":
                return ListType(elems)
            else:
                raise HclSyntaxError(f"unexpected token while parsing list: {kind}")


def _flatten(items: list[Item]) -> list[Item]:
    """HCL1 ``flattenObjects`` for one object list, then recursively for every value."""
    out: list[Item] = []
    frontier = list(items)
    while frontier:
        item = frontier.pop()
        val = item.val
        if (
            isinstance(val, ObjectType)
            and val.items
            and all(isinstance(s.val, ObjectType) for s in val.items)
        ):
            frontier.extend(Item(item.keys + sub.keys, sub.val) for sub in val.items)
        elif isinstance(val, ListType) and val.elems and all(isinstance(e, ObjectType) for e in val.elems):
            frontier.extend(Item(item.keys, elem) for elem in val.elems)
        else:
            out.append(item)
    out.reverse()
    for item in out:
        _flatten_value(item.val)
    return out


def _flatten_value(node: Node) -> None:
    if isinstance(node, ObjectType):
        node.items = _flatten(node.items)
    elif isinstance(node, ListType):
        for elem in node.elems:
            _flatten_value(elem)
