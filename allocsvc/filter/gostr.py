"""Go ``strconv`` behaviour that go-bexpr leans on, reproduced byte-for-byte.

Owns: ``strconv.Quote`` (used by ``%q``/``%#v`` in error texts), ``strconv.Unquote`` (string
literals in filter expressions), and ``ParseBool``/``ParseInt``/``ParseUint``/``ParseFloat``
(coercion of expression values to the type of the selected field) including Go's exact
``*strconv.NumError`` messages.  Pure functions only.
"""

from __future__ import annotations

import math

ERR_SYNTAX = "invalid syntax"
ERR_RANGE = "value out of range"

_LOWERHEX = "0123456789abcdef"
_SIMPLE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_UNESCAPES = {"a": 0x07, "b": 0x08, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B, "\\": 0x5C}


class NumError(ValueError):
    """A failed ``strconv.Parse*`` call; ``str()`` is Go's ``NumError.Error()`` text."""

    def __init__(self, func: str, num: str, err: str) -> None:
        super().__init__(f"strconv.{func}: parsing {quote(num)}: {err}")
        self.func = func
        self.num = num
        self.err = err


class UnquoteError(ValueError):
    """``strconv.Unquote`` rejected a literal (Go's ``strconv.ErrSyntax``)."""

    def __init__(self) -> None:
        super().__init__(ERR_SYNTAX)


def quote(text: str) -> str:
    """Return ``strconv.Quote(text)``: a double-quoted Go string literal."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0xDC80 <= code <= 0xDCFF:
            # A raw (non-UTF-8) byte carried through ``surrogateescape``.
            byte = code - 0xDC00
            out.append("\\x" + _LOWERHEX[byte >> 4] + _LOWERHEX[byte & 0xF])
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append("\\x" + _LOWERHEX[code >> 4] + _LOWERHEX[code & 0xF])
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def unquote(literal: str) -> str:
    """Return ``strconv.Unquote(literal)`` for a backquoted or double-quoted literal.

    Raises UnquoteError (Go's ``ErrSyntax``).  Bytes that are not valid UTF-8 (from ``\\x``
    or octal escapes) are carried as ``surrogateescape`` code points, so they never compare
    equal to ordinary text, exactly as in Go.
    """
    if len(literal) < 2:
        raise UnquoteError
    q = literal[0]
    end = literal.find(q, 1)
    if end < 0:
        raise UnquoteError
    if end != len(literal) - 1:
        raise UnquoteError  # trailing text after the closing quote
    body = literal[1:end]
    if q == "`":
        return body.replace("\r", "")
    if q != '"':
        raise UnquoteError
    if "\\" not in body and "\n" not in body:
        return body
    buf = bytearray()
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch == "\n":
            raise UnquoteError
        if ch != "\\":
            buf += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= n:
            raise UnquoteError
        c = body[i + 1]
        i += 2
        if c in _UNESCAPES:
            buf.append(_UNESCAPES[c])
        elif c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = body[i : i + width]
            if len(digits) < width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise UnquoteError
            value = int(digits, 16)
            i += width
            if c == "x":
                buf.append(value)
            else:
                if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                    raise UnquoteError
                buf += chr(value).encode("utf-8")
        elif c in "01234567":
            digits = body[i : i + 2]
            if len(digits) < 2 or any(d not in "01234567" for d in digits):
                raise UnquoteError
            value = int(c + digits, 8)
            i += 2
            if value > 255:
                raise UnquoteError
            buf.append(value)
        elif c == '"':
            buf.append(0x22)
        else:
            raise UnquoteError
    return buf.decode("utf-8", "surrogateescape")


def parse_bool(text: str) -> bool:
    """``strconv.ParseBool``."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise NumError("ParseBool", text, ERR_SYNTAX)


def _underscore_ok(s: str) -> bool:
    """Go's ``underscoreOK``: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("-", "+"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i = 2
        saw = "0"
        hexa = s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def _digit_value(c: str) -> int:
    if "0" <= c <= "9":
        return ord(c) - 48
    lc = c.lower()
    if "a" <= lc <= "z" and c.isascii():
        return ord(lc) - 87
    return 99


def parse_uint(text: str, *, _func: str = "ParseUint") -> int:
    """``strconv.ParseUint(text, 0, 64)``."""
    if text == "":
        raise NumError(_func, text, ERR_SYNTAX)
    s0 = text
    s = text
    base = 10
    if s[0] == "0":
        if len(s) >= 3 and s[1].lower() == "b":
            base, s = 2, s[2:]
        elif len(s) >= 3 and s[1].lower() == "o":
            base, s = 8, s[2:]
        elif len(s) >= 3 and s[1].lower() == "x":
            base, s = 16, s[2:]
        else:
            base, s = 8, s[1:]
    max_val = (1 << 64) - 1
    n = 0
    underscores = False
    for c in s:
        if c == "_":
            underscores = True
            continue
        d = _digit_value(c)
        if d >= base:
            raise NumError(_func, s0, ERR_SYNTAX)
        n = n * base + d
        if n > max_val:
            raise NumError(_func, s0, ERR_RANGE)
    if underscores and not _underscore_ok(s0):
        raise NumError(_func, s0, ERR_SYNTAX)
    return n


def parse_int(text: str) -> int:
    """``strconv.ParseInt(text, 0, 64)``."""
    if text == "":
        raise NumError("ParseInt", text, ERR_SYNTAX)
    s = text
    neg = False
    if s[0] == "+":
        s = s[1:]
    elif s[0] == "-":
        neg, s = True, s[1:]
    try:
        un = parse_uint(s)
    except NumError as exc:
        if exc.err != ERR_RANGE:
            raise NumError("ParseInt", text, exc.err) from None
        un = (1 << 64) - 1
    cutoff = 1 << 63
    if not neg and un >= cutoff:
        raise NumError("ParseInt", text, ERR_RANGE)
    if neg and un > cutoff:
        raise NumError("ParseInt", text, ERR_RANGE)
    return -un if neg else un


def _special_float(s: str) -> tuple[float, int] | None:
    """Go's ``special``: inf/infinity/nan prefixes (case-insensitive)."""
    if not s:
        return None
    sign = 1.0
    nsign = 0
    rest = s
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        nsign = 1
        rest = s[1:]
    if nsign or (rest[:1] in ("i", "I")):
        low = rest.lower()
        n = 0
        for a, b in zip(low, "infinity", strict=False):
            if a != b:
                break
            n += 1
        if 3 < n < 8:
            n = 3
        if n in (3, 8):
            return sign * math.inf, nsign + n
        return None
    if rest[:3].lower() == "nan":
        return math.nan, 3
    return None


def _read_float(s: str) -> int | None:
    """Go's ``readFloat`` syntax check; returns the number of characters consumed or None."""
    i = 0
    n = len(s)
    if i < n and s[i] in "+-":
        i += 1
    base = 10
    exp_char = "e"
    if i + 2 < n and s[i] == "0" and s[i + 1].lower() == "x":
        base = 16
        i += 2
        exp_char = "p"
    underscores = False
    saw_dot = False
    saw_digits = False
    while i < n:
        c = s[i]
        if c == "_":
            underscores = True
        elif c == ".":
            if saw_dot:
                break
            saw_dot = True
        elif "0" <= c <= "9" or (base == 16 and "a" <= c.lower() <= "f" and c.isascii()):
            saw_digits = True
        else:
            break
        i += 1
    if not saw_digits:
        return None
    if i < n and s[i].lower() == exp_char:
        i += 1
        if i >= n:
            return None
        if s[i] in "+-":
            i += 1
        if i >= n or not ("0" <= s[i] <= "9"):
            return None
        while i < n and ("0" <= s[i] <= "9" or s[i] == "_"):
            if s[i] == "_":
                underscores = True
            i += 1
    elif base == 16:
        return None
    if underscores and not _underscore_ok(s[:i]):
        return None
    return i


def parse_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)``."""
    special = _special_float(text)
    if special is not None:
        value, consumed = special
        if consumed != len(text):
            raise NumError("ParseFloat", text, ERR_SYNTAX)
        return value
    consumed_or_none = _read_float(text)
    if consumed_or_none is None or consumed_or_none != len(text):
        raise NumError("ParseFloat", text, ERR_SYNTAX)
    clean = text.replace("_", "")
    body = clean.lstrip("+-")
    negative = clean.startswith("-")
    try:
        value = float.fromhex(body) if body[:2].lower() == "0x" else float(body)
    except OverflowError:
        raise NumError("ParseFloat", text, ERR_RANGE) from None
    if math.isinf(value):
        raise NumError("ParseFloat", text, ERR_RANGE)
    return -value if negative else value
