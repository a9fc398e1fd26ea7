"""Go ``encoding/json`` as Nomad's agent applies it to what clients send, with Go's error texts.

Owns ``unmarshal`` (``json.Unmarshal``: the whole input must be one value), ``decode_body``
(``json.NewDecoder(r.Body).Decode``: the first value, trailing bytes ignored, an all-whitespace
body is ``EOF``), ``decode_first`` (the same Decoder as gorilla's ``ReadJSON`` uses it, ``EOF``
read as ``unexpected EOF``) and the small ``GoType`` schema they decode against: object keys
match struct fields case-insensitively, unknown keys and ``null`` values are ignored, invalid
UTF-8 and lone surrogates in strings become U+FFFD. Errors carry Go's exact text: the scanner's
``invalid character 'x' looking for beginning of value`` / ``unexpected end of JSON input`` /
``unexpected EOF``, ``json: cannot unmarshal string into Go struct field T.f of type int32`` and
base64's ``illegal base64 data at input byte N``. Input msgspec accepts skips the Python scanner,
which walks iteratively (Go allows 10,000 levels of nesting). Used for the client allocation
signal and restart bodies, and by the exec endpoint for its ``command`` parameter, the
``ws_handshake`` frame and every client frame (FACTS §7). Pure.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from allocsvc.gocompat import go_quote

MAX_NESTING = 10000
"""Go's scanner refuses deeper nesting (``exceeded max depth``)."""
FAST_PATH_BYTES = 64 * 1024
"""A larger object decoded into a struct is split by msgspec; only members naming a field are parsed."""


class GoJSONError(ValueError):
    """JSON that Go's decoder refuses; ``message`` is Go's ``err.Error()``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the scanner (encoding/json/scanner.go) -----------------------------------------------------

_SPACE_RUN = re.compile(rb"[ \t\r\n]*")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_STRING_RUN = re.compile(rb'[^"\\\x00-\x1f]*')
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_OPEN, _CLOSE_OBJECT = b"{[", ord("}")
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}


def _quote_char(c: int) -> str:
    """Go's ``quoteChar``: a byte as a Go rune literal (bytes >= 0x80 read as U+0080..U+00FF)."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    return "'" + go_quote(chr(c))[1:-1] + "'"


def _skip_space(data: bytes, pos: int) -> int:
    if pos < len(data) and data[pos] in b" \t\r\n":
        match = _SPACE_RUN.match(data, pos)
        assert match is not None
        pos = match.end()
    return pos


class _Scanner:
    """The failing states of Go's scanner, walked over bytes with an explicit stack.

    ``value`` returns where the value starting at ``pos`` ends, or raises Go's error for it;
    ``eof`` is the error for input that stops inside the value.
    """

    def __init__(self, data: bytes, pos: int, eof: str) -> None:
        self.data = data
        self.pos = pos
        self.eof = eof

    def fail(self, context: str) -> GoJSONError:
        return GoJSONError(f"invalid character {_quote_char(self.data[self.pos])} {context}")

    def peek(self) -> int:
        if self.pos >= len(self.data):
            raise GoJSONError(self.eof)
        return self.data[self.pos]

    def skip_space(self) -> int:
        self.pos = _skip_space(self.data, self.pos)
        return self.peek()

    def value(self) -> int:
        """Scan one value; ``stack`` holds the closing byte of every open container."""
        stack: list[int] = []
        while True:
            c = self.skip_space()
            if c in _OPEN:
                close = _CLOSE_OBJECT if c == ord("{") else ord("]")
                if len(stack) >= MAX_NESTING:
                    raise self.fail("exceeded max depth")
                stack.append(close)
                self.pos += 1
                if self.skip_space() != close:
                    if close == _CLOSE_OBJECT:
                        self.key()
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
                return self.pos

    def key(self) -> None:
        """An object key and its colon."""
        if self.skip_space() != ord('"'):
            raise self.fail("looking for beginning of object key string")
        self.string()
        if self.skip_space() != ord(":"):
            raise self.fail("after object key")
        self.pos += 1

    def end_values(self, stack: list[int]) -> bool:
        """A value just ended: close finished containers; True when another value must follow."""
        while stack:
            c = self.skip_space()
            close = stack[-1]
            if c == ord(","):
                self.pos += 1
                if close == _CLOSE_OBJECT:
                    self.key()
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


def _well_formed(raw: bytes) -> bool:
    """msgspec accepts the whole input as one JSON value, so Go's scanner would too.

    msgspec is the stricter of the two (it also refuses lone surrogate escapes, and gives up on
    nesting long before Go's 10,000 levels), so what it refuses is left to the scanner.
    """
    try:
        msgspec.json.decode(raw, type=msgspec.Raw)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def _members(raw: bytes) -> dict[str, msgspec.Raw] | None:
    """A top-level object's members as msgspec splits them, in document order; None when msgspec
    refuses the input as one object, or when a key is repeated (msgspec keeps only its last value,
    where Go decodes each in turn).

    The check walks the object once, stepping over each value by the text msgspec split off for
    it: the walk ends on the closing brace after ``len(members)`` members only if no key repeats.
    """
    try:
        members = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    pos = _skip_space(raw, 0) + 1
    for i, value in enumerate(members.values(), 1):
        key = _STRING.match(raw, _skip_space(raw, pos))
        if key is None:
            return None
        pos = _skip_space(raw, _skip_space(raw, key.end()) + 1)  # past the colon
        if not raw.startswith(value, pos):
            return None
        pos = _skip_space(raw, pos + len(value))
        if raw[pos : pos + 1] != (b"}" if i == len(members) else b","):
            return None
        pos += 1
    return members


def _check_valid(raw: bytes) -> None:
    """``checkValid``: the whole input is exactly one JSON value (plus whitespace).

    Go's scanner is fed one space after the input, so a number or literal cut short reads
    ``invalid character ' ' ...`` and anything else cut short ``unexpected end of JSON input``.
    """
    if _well_formed(raw):
        return
    padded = raw + b" "
    end = _skip_space(padded, _Scanner(padded, 0, "unexpected end of JSON input").value())
    if end < len(padded):
        raise GoJSONError(f"invalid character {_quote_char(padded[end])} after top-level value")


def _first_value_end(raw: bytes, empty: str) -> int:
    """``Decoder.readValue``: where the first value ends; ``empty`` is the error for no value.

    Input that stops inside the value is ``unexpected EOF``.
    """
    if _well_formed(raw):
        return len(raw)
    start = _skip_space(raw, 0)
    if start == len(raw):
        raise GoJSONError(empty)
    return _Scanner(raw, start, "unexpected EOF").value()


# --- the schema and the decoder (encoding/json/decode.go) ---------------------------------------


@dataclass(frozen=True)
class GoType:
    """A Go type a JSON value is decoded into.

    ``kind`` is one of ``string``, ``bool``, ``int``, ``bytes``, ``slice`` or ``struct``;
    ``name`` is what Go's ``reflect.Type.String()`` prints (``int32``, ``[]uint8``,
    ``proto.ExecTaskStreamingIOOperation``, ``struct { TaskName string; AllTasks bool }``).
    ``paths`` gives a struct field's step in Go's error path where that is not just its name: a
    field promoted from an embedded struct is ``QueryOptions.Region``.
    """

    kind: str
    name: str
    bits: int = 64
    unsigned: bool = False
    elem: GoType | None = None
    fields: dict[str, GoType] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def struct_name(self) -> str:
        """Go's ``reflect.Type.Name()`` as ``Go struct field <Name>.<path>`` prints it ("" if unnamed)."""
        return "" if self.name.startswith("struct {") else self.name.rsplit(".", 1)[-1]


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


def go_struct(name: str, fields: dict[str, GoType], embedded: dict[str, dict[str, GoType]] | None = None) -> GoType:
    """A Go struct (or pointer to one: ``null`` leaves it unset); keys are its JSON names.

    ``embedded`` maps the name of each embedded struct to its fields: Go promotes them (a field
    of the outer struct wins a clash) and names the embedded struct in their error path.
    """
    promoted, paths = dict(fields), {}
    for outer, inner in (embedded or {}).items():
        for key, target in inner.items():
            if key not in promoted:
                promoted[key], paths[key] = target, f"{outer}.{key}"
    return GoType("struct", name, fields=promoted, paths=paths)


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
            name = _field_name(target, key)
            if name is None:
                continue
            saved_struct, depth = self.struct, len(self.path)
            self.struct = target
            self.path.append(target.paths.get(name, name))
            decoded = self.decode(item, target.fields[name])
            if decoded is not None:
                out[name] = decoded
            self.struct = saved_struct
            del self.path[depth:]
        return out


def _field_name(target: GoType, key: str) -> str | None:
    """The struct field an object key sets: its exact name, else the first that matches it case-insensitively."""
    if key in target.fields:
        return key
    return next((f for f in target.fields if f.lower() == key.lower()), None)


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


def _parse(text: str) -> Any:
    """Parse input the scanner accepted; nesting too deep for Python's recursion is walked iteratively."""
    try:
        return json.loads(text, object_pairs_hook=_Pairs, parse_int=_Number, parse_float=_Number)
    except RecursionError:
        return _parse_deep(text)


_TOKEN = re.compile(r'[ \t\r\n]*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([-0-9][-+.0-9eE]*)|(true|false|null)|([\[\]{}:,]))')
_LITERAL_VALUES: dict[str, Any] = {"true": True, "false": False, "null": None}


def _parse_deep(data: str) -> Any:
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
        if punct in ("[", "{"):
            stack.append(_Pairs() if punct == "{" else [])
            keys.append(None)
            continue
        if punct in (":", ","):
            continue
        if punct in ("]", "}"):
            value: Any = stack.pop()
            keys.pop()
        elif text is not None:
            value = json.loads(text)
        elif number is not None:
            value = _Number(number)
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


def _errors(data: str | bytes) -> str:
    """How the input's bytes become text again: a str's own bytes round-trip (its lone surrogates
    are replaced when a string is decoded); other bytes are read as Go reads them, invalid UTF-8
    becoming U+FFFD."""
    return "surrogatepass" if isinstance(data, str) else "replace"


def _text(data: str | bytes, raw: bytes, end: int) -> str:
    """The input's first ``end`` bytes as text."""
    if isinstance(data, str) and end == len(raw):
        return data
    return raw[:end].decode("utf-8", _errors(data))


def _raw(data: str | bytes) -> bytes:
    return data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data


def _split(data: str | bytes, raw: bytes, target: GoType) -> _Pairs | None:
    """The fast path for a large object into a struct: parse only the members that name a field
    (the decoder ignores the others). None when it does not apply."""
    if len(raw) <= FAST_PATH_BYTES or target.kind != "struct":
        return None
    members = _members(raw)
    if members is None:
        return None
    errors = _errors(data)
    return _Pairs(
        (key, _parse(bytes(value).decode("utf-8", errors)) if _field_name(target, key) else None)
        for key, value in members.items()
    )


def unmarshal(data: str | bytes, target: GoType) -> Any:
    """``json.Unmarshal(data, &v)``: the decoded value (None for ``null``) or GoJSONError."""
    raw = _raw(data)
    value = _split(data, raw, target)
    if value is None:
        _check_valid(raw)
        value = _parse(_text(data, raw, len(raw)))
    return _decode(value, target)


def decode_body(data: str | bytes, target: GoType) -> Any:
    """``json.NewDecoder(r.Body).Decode(&v)``: the first value decoded (None for ``null``),
    trailing bytes ignored; an empty or all-whitespace body is ``EOF``. Raises GoJSONError:
    a syntax error first, else the first type mismatch in document order."""
    return _decode_first(data, target, "EOF")


def decode_first(data: str | bytes, target: GoType) -> Any:
    """gorilla ``ReadJSON``: ``decode_body`` on a message, where ``io.EOF`` becomes ``unexpected EOF``."""
    return _decode_first(data, target, "unexpected EOF")


def _decode_first(data: str | bytes, target: GoType, empty: str) -> Any:
    raw = _raw(data)
    value = _split(data, raw, target)
    if value is None:
        value = _parse(_text(data, raw, _first_value_end(raw, empty)))
    return _decode(value, target)
