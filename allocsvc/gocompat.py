"""Go-compatible text formats Nomad puts on the wire.

Owns: Go ``time.Duration`` parsing and printing, ``strconv.ParseBool``, ``%q`` quoting,
RFC3339Nano timestamps and the final byte fix-ups that make msgspec JSON match Go's encoder.
Pure functions; every layer may use them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,
    "\u03bcs": MICROSECOND,
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class GoSyntaxError(ValueError):
    """A value is not in the Go syntax it was expected in; ``str()`` is Go's own message."""


def parse_bool(text: str) -> bool:
    """Parse like Go's ``strconv.ParseBool``; raises GoSyntaxError with Go's message."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise GoSyntaxError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse_duration(text: str) -> int:
    """Parse a Go duration string (``10s``, ``1h30m``, ``-1.5ms``) into nanoseconds."""
    original = text
    if text in ("0", "+0", "-0"):
        return 0
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if not text:
        raise GoSyntaxError(f'time: invalid duration "{original}"')
    total = 0
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None or match.group(1) in ("", "."):
            if match is None and re.match(r"[0-9.]+$", text[pos:]):
                raise GoSyntaxError(f'time: missing unit in duration "{original}"')
            raise GoSyntaxError(f'time: invalid duration "{original}"')
        number, unit = match.groups()
        whole, _, frac = number.partition(".")
        scale = _UNITS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // (10 ** len(frac))
        total += value
        pos = match.end()
    return sign * total


def _fmt_frac(value: int, digits: int) -> str:
    """Render ``value`` / 10**digits with trailing zeros trimmed (Go's fmtFrac + fmtInt)."""
    whole, frac = divmod(value, 10**digits)
    frac_text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{frac_text}" if frac_text else str(whole)


@lru_cache(maxsize=1024)
def format_duration(ns: int) -> str:
    """Format nanoseconds exactly like Go's ``time.Duration.String`` (memoised: replay repeats a few values)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < SECOND:
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            return f"{sign}{_fmt_frac(u, 3)}\u00b5s"
        return f"{sign}{_fmt_frac(u, 6)}ms"
    hours, rest = divmod(u, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    seconds = _fmt_frac(rest, 9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return f"{sign}{seconds}"


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Quote like Go's ``%q`` / ``strconv.Quote`` for printable-or-not text."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x10000:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_seconds: dict[int, str] = {}
"""``%Y-%m-%dT%H:%M:%S.`` of each Unix second formatted: replay formats millions of timestamps from
a few thousand seconds (a batch fold formats them out of time order, so one entry is not enough)."""

_SECONDS_KEPT = 4096
"""``_seconds`` is emptied when it reaches this size."""


def _second(seconds: int) -> str:
    if len(_seconds) >= _SECONDS_KEPT:
        _seconds.clear()
    text = _seconds[seconds] = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return text


def rfc3339nano(unix_ns: int) -> str:
    """Format Unix nanoseconds as Go's RFC3339Nano in UTC (trailing zeros trimmed)."""
    seconds, nanos = divmod(unix_ns, SECOND)
    base = _seconds.get(seconds) or _second(seconds)
    if nanos:
        return f"{base}{('%09d' % nanos).rstrip('0')}Z"  # noqa: UP031 - faster than a format spec
    return base[:-1] + "Z"


def go_json_fixup(data: bytes) -> bytes:
    """Escape U+2028/U+2029 as Go's encoder does; msgspec writes them raw."""
    if b"\xe2\x80\xa8" in data or b"\xe2\x80\xa9" in data:
        data = data.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return data
