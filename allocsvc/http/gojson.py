"""Go ``encoding/json`` as Nomad's agent applies it to what clients send, with Go's error texts.

Owns ``unmarshal`` (``json.Unmarshal``: the whole input must be one value), ``decode_first``
(``json.Decoder`` as gorilla's ``ReadJSON`` uses it: the first value, trailing bytes ignored) and
the small ``GoType`` schema they decode against. Errors carry Go's exact text: the scanner's
``invalid character 'x' looking for beginning of value`` / ``unexpected end of JSON input``,
``json: cannot unmarshal string into Go struct field T.f of type int32`` and base64's
``illegal base64 data at input byte N``. The exec endpoint uses it for its ``command`` parameter,
the ``ws_handshake`` frame and every client frame (FACTS §7).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from allocsvc.gocompat import go_quote

MAX_NESTING = 10000
"""Go's scanner refuses deeper nesting (``exceeded max depth``)."""


class GoJSONError(ValueError):
    """JSON that Go's decoder refuses; ``message`` is Go's ``err.Error()``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the scanner (encoding/json/scanner.go) -----------------------------------------------------

_SPACE = frozenset(b" \t\r\n")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_ESCAPES = frozenset(b'bfnrt\\/"')
_OBJECT_KEY, _OBJECT_VALUE, _ARRAY_VALUE = 0, 1, 2


def _quote_char(c: int) -> str:
    """Go's ``quoteChar``: a byte as a Go rune literal (bytes >= 0x80 read as U+0080..U+00FF)."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    return "'" + go_quote(chr(c))[1:-1] + "'"


class _ScanError(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


class _Scanner:
    """A byte-at-a-time port of Go's JSON scanner state machine."""

    def __init__(self) -> None:
        self.step: Callable[[int], None] = self._begin_value
        self.stack: list[int] = []
        self.end_top = False
        self.scan_end = False
        self.closed_top = False
        self.pending: str | None = None

    def fail(self, c: int, context: str) -> None:
        raise _ScanError(f"invalid character {_quote_char(c)} {context}")

    def _push(self, c: int, state: int) -> None:
        self.stack.append(state)
        if len(self.stack) > MAX_NESTING:
            self.fail(c, "exceeded max depth")

    def _pop(self) -> None:
        self.stack.pop()
        if self.stack:
            self.step = self._end_value
        else:
            self.end_top = self.closed_top = True
            self.step = self._end_top

    def _begin_value_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("]"):
            self._end_value(c)
            return
        self._begin_value(c)

    def _begin_value(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("{"):
            self._push(c, _OBJECT_KEY)
            self.step = self._begin_string_or_empty
        elif c == ord("["):
            self._push(c, _ARRAY_VALUE)
            self.step = self._begin_value_or_empty
        elif c == ord('"'):
            self.step = self._in_string
        elif c == ord("-"):
            self.step = self._neg
        elif c == ord("0"):
            self.step = self._zero
        elif c == ord("t"):
            self.step = self._literal("true", 1)
        elif c == ord("f"):
            self.step = self._literal("false", 1)
        elif c == ord("n"):
            self.step = self._literal("null", 1)
        elif ord("1") <= c <= ord("9"):
            self.step = self._one
        else:
            self.fail(c, "looking for beginning of value")

    def _begin_string_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("}"):
            self.stack[-1] = _OBJECT_VALUE
            self._end_value(c)
            return
        self._begin_string(c)

    def _begin_string(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord('"'):
            self.step = self._in_string
            return
        self.fail(c, "looking for beginning of object key string")

    def _end_value(self, c: int) -> None:
        if not self.stack:
            self.step = self._end_top
            self.end_top = True
            self._end_top(c)
            return
        if c in _SPACE:
            self.step = self._end_value
            return
        top = self.stack[-1]
        if top == _OBJECT_KEY:
            if c == ord(":"):
                self.stack[-1] = _OBJECT_VALUE
                self.step = self._begin_value
                return
            self.fail(c, "after object key")
        elif top == _OBJECT_VALUE:
            if c == ord(","):
                self.stack[-1] = _OBJECT_KEY
                self.step = self._begin_string
                return
            if c == ord("}"):
                self._pop()
                return
            self.fail(c, "after object key:value pair")
        else:
            if c == ord(","):
                self.step = self._begin_value
                return
            if c == ord("]"):
                self._pop()
                return
            self.fail(c, "after array element")

    def _end_top(self, c: int) -> None:
        # Go returns scanEnd now and complains about a non-space byte on the next call.
        self.scan_end = True
        if c not in _SPACE and self.pending is None:
            self.pending = f"invalid character {_quote_char(c)} after top-level value"

    def _in_string(self, c: int) -> None:
        if c == ord('"'):
            self.step = self._end_value
        elif c == ord("\\"):
            self.step = self._in_string_esc
        elif c < 0x20:
            self.fail(c, "in string literal")

    def _in_string_esc(self, c: int) -> None:
        if c in _ESCAPES:
            self.step = self._in_string
        elif c == ord("u"):
            self.step = self._hex_escape(4)
        else:
            self.fail(c, "in string escape code")

    def _hex_escape(self, left: int) -> Callable[[int], None]:
        def step(c: int) -> None:
            if c not in _HEX:
                self.fail(c, "in \\u hexadecimal character escape")
            self.step = self._in_string if left == 1 else self._hex_escape(left - 1)

        return step

    def _neg(self, c: int) -> None:
        if c == ord("0"):
            self.step = self._zero
        elif ord("1") <= c <= ord("9"):
            self.step = self._one
        else:
            self.fail(c, "in numeric literal")

    def _one(self, c: int) -> None:
        if c in _DIGITS:
            return
        self._zero(c)

    def _zero(self, c: int) -> None:
        if c == ord("."):
            self.step = self._dot
        elif c in (ord("e"), ord("E")):
            self.step = self._exp
        else:
            self._end_value(c)

    def _dot(self, c: int) -> None:
        if c in _DIGITS:
            self.step = self._dot_digits
            return
        self.fail(c, "after decimal point in numeric literal")

    def _dot_digits(self, c: int) -> None:
        if c in _DIGITS:
            return
        if c in (ord("e"), ord("E")):
            self.step = self._exp
            return
        self._end_value(c)

    def _exp(self, c: int) -> None:
        if c in (ord("+"), ord("-")):
            self.step = self._exp_sign
            return
        self._exp_sign(c)

    def _exp_sign(self, c: int) -> None:
        if c in _DIGITS:
            self.step = self._exp_digits
            return
        self.fail(c, "in exponent of numeric literal")

    def _exp_digits(self, c: int) -> None:
        if c in _DIGITS:
            return
        self._end_value(c)

    def _literal(self, word: str, at: int) -> Callable[[int], None]:
        def step(c: int) -> None:
            if c != ord(word[at]):
                self.fail(c, f"in literal {word} (expecting {_quote_char(ord(word[at]))})")
            self.step = self._end_value if at + 1 == len(word) else self._literal(word, at + 1)

        return step


def _check_valid(data: bytes) -> None:
    """``checkValid``: the whole input is exactly one JSON value (plus whitespace)."""
    scanner = _Scanner()
    for c in data:
        scanner.step(c)
        if scanner.pending is not None:
            raise _ScanError(scanner.pending)
    if scanner.end_top:
        return
    scanner.step(ord(" "))
    if not scanner.end_top:
        raise _ScanError("unexpected end of JSON input")


def _first_value_end(data: bytes) -> int:
    """``Decoder.readValue``: the length of the first value; raises for bad or missing input."""
    scanner = _Scanner()
    for i, c in enumerate(data):
        scanner.scan_end = scanner.closed_top = False
        scanner.step(c)
        if scanner.scan_end:
            return i
        if scanner.closed_top:
            return i + 1
    if not data.strip(bytes(_SPACE)):
        raise _ScanError("unexpected EOF")
    scanner.scan_end = False
    try:
        scanner.step(ord(" "))
    except _ScanError:
        raise _ScanError("unexpected EOF") from None
    if not scanner.scan_end:
        raise _ScanError("unexpected EOF")
    return len(data)


# --- the schema and the decoder (encoding/json/decode.go) ---------------------------------------


@dataclass(frozen=True)
class GoType:
    """A Go type a JSON value is decoded into.

    ``kind`` is one of ``string``, ``bool``, ``int``, ``bytes``, ``slice`` or ``struct``;
    ``name`` is what Go's ``reflect.Type.String()`` prints (``int32``, ``[]uint8``,
    ``proto.ExecTaskStreamingIOOperation``).
    """

    kind: str
    name: str
    bits: int = 64
    unsigned: bool = False
    elem: GoType | None = None
    fields: dict[str, GoType] = field(default_factory=dict)

    @property
    def struct_name(self) -> str:
        """The bare struct name Go puts in ``Go struct field <Name>.<path>``."""
        return self.name.rsplit(".", 1)[-1]


def go_string() -> GoType:
    """Go ``string``."""
    return GoType("string", "string")


def go_bool() -> GoType:
    """Go ``bool``."""
    return GoType("bool", "bool")


def go_int(bits: int = 64) -> GoType:
    """Go ``int`` (64-bit) or ``int32``."""
    return GoType("int", "int" if bits == 64 else f"int{bits}", bits=bits)


def go_bytes() -> GoType:
    """Go ``[]byte``: a base64 string on the wire (an array of byte values decodes too)."""
    return GoType("bytes", "[]uint8", elem=GoType("int", "uint8", bits=8, unsigned=True))


def go_slice(elem: GoType) -> GoType:
    """Go ``[]T``."""
    return GoType("slice", f"[]{elem.name}", elem=elem)


def go_struct(name: str, fields: dict[str, GoType]) -> GoType:
    """A Go struct (or pointer to one: ``null`` leaves it unset); keys are its JSON names."""
    return GoType("struct", name, fields=fields)


class _Number(str):
    """A JSON number kept as its literal text (Go reports ``number 1.5`` with the literal)."""


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs in order (duplicates kept, as Go sees them)."""


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _Number):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _Pairs):
        return "object"
    return "array"


_SURROGATE = re.compile("[\ud800-\udfff]")


class _Decoder:
    """Walks a parsed value against a GoType, keeping the first error like Go's ``saveError``."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.struct: GoType | None = None
        self.path: list[str] = []

    def save(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def type_error(self, value: str, target: GoType) -> None:
        if self.struct is not None or self.path:
            name = self.struct.struct_name if self.struct is not None else ""
            where = f"Go struct field {name}.{'.'.join(self.path)}"
        else:
            where = "Go value"
        self.save(f"json: cannot unmarshal {value} into {where} of type {target.name}")

    def decode(self, value: Any, target: GoType) -> Any:
        if value is None:
            return None
        kind = _kind_of(value)
        if target.kind == "struct":
            if kind != "object":
                self.type_error(kind, target)
                return None
            return self._struct(value, target)
        if target.kind == "slice" or (target.kind == "bytes" and kind == "array"):
            if kind != "array":
                self.type_error(kind, target)
                return None
            assert target.elem is not None
            items = [_zero(target.elem) if item is None else self.decode(item, target.elem) for item in value]
            return bytes(i or 0 for i in items) if target.kind == "bytes" else items
        if kind in ("array", "object"):
            self.type_error(kind, target)
            return None
        if target.kind == "string":
            if kind == "string":
                return _SURROGATE.sub("\ufffd", value)
            self.type_error(kind, target)
        elif target.kind == "bool":
            if kind == "bool":
                return value
            self.type_error(kind, target)
        elif target.kind == "int":
            if kind == "number":
                number = _parse_int(value, target.bits, target.unsigned)
                if number is None:
                    self.type_error(f"number {value}", target)
                return number
            self.type_error(kind, target)
        elif kind == "string":  # bytes
            try:
                return decode_base64(value)
            except GoJSONError as exc:
                self.save(exc.message)
        else:
            self.type_error(kind, target)
        return None

    def _struct(self, pairs: list[tuple[str, Any]], target: GoType) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in pairs:
            name = key if key in target.fields else next((f for f in target.fields if f.lower() == key.lower()), None)
            if name is None:
                continue
            saved_struct, depth = self.struct, len(self.path)
            self.struct = target
            self.path.append(name)
            decoded = self.decode(item, target.fields[name])
            if decoded is not None:
                out[name] = decoded
            self.struct = saved_struct
            del self.path[depth:]
        return out


def _zero(target: GoType) -> Any:
    """Go's zero value, which a ``null`` slice element leaves in place."""
    return {"string": "", "bool": False, "int": 0, "bytes": b"", "slice": None, "struct": {}}[target.kind]


def _parse_int(text: str, bits: int, unsigned: bool) -> int | None:
    if not re.fullmatch(r"[0-9]+" if unsigned else r"-?[0-9]+", text):
        return None
    number = int(text)
    if unsigned:
        return number if number < 1 << bits else None
    limit = 1 << (bits - 1)
    return number if -limit <= number < limit else None


def decode_base64(text: str) -> bytes:
    """Go's ``base64.StdEncoding.DecodeString`` (padding required, CR/LF skipped) with its errors."""
    src = text.encode("utf-8", "surrogatepass")
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    si = 0
    while True:
        j = 0
        while j < 4:
            if si == len(src):
                if j == 0:
                    return base64.b64decode(src.replace(b"\r", b"").replace(b"\n", b""))
                raise GoJSONError(f"illegal base64 data at input byte {si - j}")
            c = src[si]
            si += 1
            if c in alphabet:
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if c != ord("=") or j in (0, 1):
                raise GoJSONError(f"illegal base64 data at input byte {si - 1}")
            if j == 2:
                while si < len(src) and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == len(src):
                    raise GoJSONError(f"illegal base64 data at input byte {len(src)}")
                if src[si] != ord("="):
                    raise GoJSONError(f"illegal base64 data at input byte {si - 1}")
                si += 1
            while si < len(src) and src[si] in (0x0A, 0x0D):
                si += 1
            if si < len(src):
                raise GoJSONError(f"illegal base64 data at input byte {si}")
            return base64.b64decode(src.replace(b"\r", b"").replace(b"\n", b""))


def _parse(data: bytes) -> Any:
    """Parse input the scanner accepted; nesting too deep for Python's recursion is walked iteratively."""
    try:
        return json.loads(data, object_pairs_hook=_Pairs, parse_int=_Number, parse_float=_Number)
    except RecursionError:
        return _parse_deep(data)


_TOKEN = re.compile(rb'\s*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([-0-9][-+.0-9eE]*)|(true|false|null)|([\[\]{}:,]))')
_LITERAL_VALUES: dict[bytes, Any] = {b"true": True, b"false": False, b"null": None}


def _parse_deep(data: bytes) -> Any:
    """An explicit-stack parser for valid JSON of any depth (Go allows 10,000 levels)."""
    stack: list[list[Any]] = []
    keys: list[str | None] = []
    result: Any = None
    pos = 0
    while True:
        match = _TOKEN.match(data, pos)
        if match is None:
            return result
        pos = match.end()
        text, number, literal, punct = match.groups()
        if punct in (b"[", b"{"):
            stack.append(_Pairs() if punct == b"{" else [])
            keys.append(None)
            continue
        if punct in (b":", b","):
            continue
        if punct in (b"]", b"}"):
            value: Any = stack.pop()
            keys.pop()
        elif text is not None:
            value = json.loads(text)
        elif number is not None:
            value = _Number(number.decode())
        else:
            value = _LITERAL_VALUES[literal]
        if not stack:
            result = value
            continue
        top = stack[-1]
        if isinstance(top, _Pairs):
            if keys[-1] is None:
                keys[-1] = value
            else:
                top.append((keys[-1], value))
                keys[-1] = None
        else:
            top.append(value)


def _decode(value: Any, target: GoType) -> Any:
    decoder = _Decoder()
    result = decoder.decode(value, target)
    if decoder.error is not None:
        raise GoJSONError(decoder.error)
    return result


def unmarshal(data: str | bytes, target: GoType) -> Any:
    """``json.Unmarshal(data, &v)``: the decoded value (None for ``null``) or GoJSONError."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        _check_valid(raw)
    except _ScanError as exc:
        raise GoJSONError(exc.message) from None
    return _decode(_parse(raw), target)


def decode_first(data: str | bytes, target: GoType) -> Any:
    """gorilla ``ReadJSON``: decode the message's first JSON value; trailing bytes are ignored."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        end = _first_value_end(raw)
    except _ScanError as exc:
        raise GoJSONError(exc.message) from None
    return _decode(_parse(raw[:end]), target)
