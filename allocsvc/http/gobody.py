"""HTTP request bodies decoded the way Nomad's handlers do: Go ``json.NewDecoder(body).Decode(&v)``.

Owns ``decode_go_struct``: only the first JSON value counts (trailing bytes are ignored), an
all-whitespace body is ``EOF``, object keys match struct fields case-insensitively, unknown keys
and ``null`` values are ignored, and every failure carries Go's exact text (``unexpected EOF``,
``invalid character 'x' looking for beginning of value``, ``json: cannot unmarshal number into
Go struct field AllocSignalRequest.Signal of type string`` …). The scanner is iterative (Go
allows 10,000 levels of nesting) and large well-formed bodies take a msgspec fast path. Used by
the client allocation endpoints (signal, restart); ``gojson.py`` serves the exec WebSocket.
Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from allocsvc.gocompat import go_quote

WHITESPACE = b" \t\r\n"
MAX_DEPTH = 10000
"""Go's scanner refuses deeper nesting (``exceeded max depth``)."""
FAST_PATH_BYTES = 64 * 1024
"""Bodies above this size that msgspec accepts as one object skip the Python scanner."""

_STRING_RUN = re.compile(rb'[^"\\\x00-\x1f]*')
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPEN, _CLOSE_OBJECT = b"{[", ord("}")
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
_KINDS = {
    ord("{"): "object",
    ord("["): "array",
    ord('"'): "string",
    ord("t"): "bool",
    ord("f"): "bool",
    ord("n"): "null",
}


class GoJSONError(Exception):
    """The body is not what Go's decoder accepts; ``message`` is Go's ``err.Error()``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GoField(msgspec.Struct, frozen=True):
    """One struct field: its Go name, Go type (``string`` or ``bool``) and its error path.

    ``path`` is what Go prints after ``Go struct field``: ``AllocSignalRequest.Signal``, or
    ``.TaskName`` for a field of an anonymous struct.
    """

    name: str
    go_type: str
    path: str


def _quote_char(c: int) -> str:
    """Go's ``quoteChar``: how a scanner error names the offending byte."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    return "'" + go_quote(chr(c))[1:-1] + "'"


class _Scanner:
    """The failing states of Go's ``encoding/json`` scanner, walked iteratively over bytes.

    Records the raw key/value pairs of a top-level object as it goes.
    """

    def __init__(self, data: bytes, start: int) -> None:
        self.data = data
        self.pos = start
        self.key_span = (0, 0)
        self.value_start = 0
        self.pairs: list[tuple[bytes, bytes]] = []

    def fail(self, context: str) -> GoJSONError:
        return GoJSONError(f"invalid character {_quote_char(self.data[self.pos])} {context}")

    def peek(self) -> int:
        if self.pos >= len(self.data):
            raise GoJSONError("unexpected EOF")
        return self.data[self.pos]

    def skip_space(self) -> int:
        while self.pos < len(self.data) and self.data[self.pos] in WHITESPACE:
            self.pos += 1
        return self.peek()

    def value(self) -> None:
        """Scan one value; ``stack`` holds the closing byte of every open container."""
        stack: list[int] = []
        while True:
            c = self.skip_space()
            if len(stack) == 1:
                self.value_start = self.pos
            if c in _OPEN:
                close = _CLOSE_OBJECT if c == ord("{") else ord("]")
                if len(stack) >= MAX_DEPTH:
                    raise self.fail("exceeded max depth")
                stack.append(close)
                self.pos += 1
                if self.skip_space() != close:
                    if close == _CLOSE_OBJECT:
                        self.key(len(stack))
                    continue
                self.pos += 1
                stack.pop()
            elif c == ord('"'):
                self.string()
            elif c == ord("-") or ord("0") <= c <= ord("9"):
                self.number()
            elif c in _LITERALS:
                self.literal(_LITERALS[c])
            else:
                raise self.fail("looking for beginning of value")
            if not self.end_values(stack):
                return

    def key(self, depth: int) -> None:
        """An object key and its colon."""
        if self.skip_space() != ord('"'):
            raise self.fail("looking for beginning of object key string")
        start = self.pos
        self.string()
        if depth == 1:
            self.key_span = (start, self.pos)
        if self.skip_space() != ord(":"):
            raise self.fail("after object key")
        self.pos += 1

    def end_values(self, stack: list[int]) -> bool:
        """A value just ended: close finished containers; True when another value must follow."""
        while stack:
            if len(stack) == 1 and stack[0] == _CLOSE_OBJECT:
                key = self.data[self.key_span[0] : self.key_span[1]]
                self.pairs.append((key, self.data[self.value_start : self.pos]))
            c = self.skip_space()
            close = stack[-1]
            if c == ord(","):
                self.pos += 1
                if close == _CLOSE_OBJECT:
                    self.key(len(stack))
                return True
            if c != close:
                raise self.fail(
                    "after object key:value pair" if close == _CLOSE_OBJECT else "after array element"
                )
            self.pos += 1
            stack.pop()
        return False

    def string(self) -> None:
        self.pos += 1
        while True:
            match = _STRING_RUN.match(self.data, self.pos)
            assert match is not None
            self.pos = match.end()
            c = self.peek()
            if c == ord('"'):
                self.pos += 1
                return
            if c < 0x20:
                raise self.fail("in string literal")
            self.pos += 1  # a backslash
            c = self.peek()
            if c == ord("u"):
                for _ in range(4):
                    self.pos += 1
                    if self.peek() not in _HEX:
                        raise self.fail("in \\u hexadecimal character escape")
            elif c not in b'bfnrt\\/"':
                raise self.fail("in string escape code")
            self.pos += 1

    def digits(self) -> None:
        while self.pos < len(self.data) and ord("0") <= self.data[self.pos] <= ord("9"):
            self.pos += 1

    def more(self, chars: bytes) -> bool:
        return self.pos < len(self.data) and self.data[self.pos] in chars

    def number(self) -> None:
        if self.data[self.pos] == ord("-"):
            self.pos += 1
            if not ord("0") <= self.peek() <= ord("9"):
                raise self.fail("in numeric literal")
        if self.data[self.pos] == ord("0"):
            self.pos += 1
        else:
            self.digits()
        if self.more(b"."):
            self.pos += 1
            if not ord("0") <= self.peek() <= ord("9"):
                raise self.fail("after decimal point in numeric literal")
            self.digits()
        if self.more(b"eE"):
            self.pos += 1
            if self.peek() in b"+-":
                self.pos += 1
            if not ord("0") <= self.peek() <= ord("9"):
                raise self.fail("in exponent of numeric literal")
            self.digits()

    def literal(self, word: bytes) -> None:
        self.pos += 1
        for expected in word[1:]:
            if self.peek() != expected:
                raise self.fail(f"in literal {word.decode()} (expecting {_quote_char(expected)})")
            self.pos += 1


def scan_first_value(data: bytes) -> tuple[str, list[tuple[bytes, bytes]]]:
    """Scan the first value like Go's Decoder: its kind and, for an object, its raw top-level
    key/value pairs in document order. Raises GoJSONError with Go's text."""
    start = 0
    while start < len(data) and data[start] in WHITESPACE:
        start += 1
    if start == len(data):
        raise GoJSONError("EOF")
    scanner = _Scanner(data, start)
    scanner.value()
    return _KINDS.get(data[start], "number"), scanner.pairs


def _string(raw: bytes) -> str:
    """A JSON string token as Go decodes it (invalid UTF-8 and lone surrogates become U+FFFD)."""
    try:
        text = msgspec.json.decode(raw, type=str)
    except (msgspec.DecodeError, UnicodeDecodeError):
        text = json.loads(raw.decode("utf-8", errors="replace"))
    return _SURROGATE.sub("\ufffd", text)


def _top_level(data: bytes) -> tuple[str, list[tuple[bytes, bytes]]]:
    """The first value's kind and object pairs (msgspec splits large well-formed objects)."""
    if len(data) > FAST_PATH_BYTES:
        try:
            fast = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            pass
        else:
            return "object", [(msgspec.json.encode(k), bytes(v)) for k, v in fast.items()]
    return scan_first_value(data)


def decode_go_struct(data: bytes, type_name: str, fields: Sequence[GoField]) -> dict[str, Any]:
    """Decode like ``json.NewDecoder(body).Decode(&v)`` into a struct with these fields.

    Returns the fields that were set, by Go name. Raises GoJSONError with Go's message: a
    syntax error first, else the first type mismatch in document order.
    """
    kind, pairs = _top_level(data)
    if kind == "null":
        return {}
    if kind != "object":
        raise GoJSONError(f"json: cannot unmarshal {kind} into Go value of type {type_name}")
    exact = {f.name: f for f in fields}
    folded = {f.name.lower(): f for f in fields}
    out: dict[str, Any] = {}
    error: str | None = None
    for raw_key, raw_value in pairs:
        key = _string(raw_key)
        field = exact.get(key) or folded.get(key.lower())
        value_kind = _KINDS.get(raw_value[0], "number")
        if field is None or value_kind == "null":
            continue
        if value_kind == field.go_type:
            out[field.name] = raw_value == b"true" if value_kind == "bool" else _string(raw_value)
        elif error is None:
            error = f"json: cannot unmarshal {value_kind} into Go struct field {field.path} of type {field.go_type}"
    if error is not None:
        raise GoJSONError(error)
    return out
