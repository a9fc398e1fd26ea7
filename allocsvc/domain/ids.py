"""UUID rules Nomad's state store applies to IDs and ID prefixes (memdb ``UUIDFieldIndex``).

Owns ``normalize_alloc_id`` and ``normalize_prefix``; both raise ``BadRequestError`` with
Nomad's exact text (Nomad itself answers 500; see design/compat.md).
"""

from __future__ import annotations

from allocsvc.errors import BadRequestError

LOOKUP = "alloc lookup failed: index error: "
_HEX = set("0123456789abcdefABCDEF")


def _hex_error(text: str) -> str:
    for ch in text:
        if ch not in _HEX:
            return f"Invalid UUID: encoding/hex: invalid byte: U+{ord(ch):04X} {_go_rune(ch)}"
    raise AssertionError(text)  # pragma: no cover


def _go_rune(ch: str) -> str:
    """Go's %q of a rune."""
    if ch == "'":
        return "'\\''"
    if ch.isprintable():
        return f"'{ch}'"
    return f"'\\x{ord(ch):02x}'" if ord(ch) < 0x80 else f"'\\u{ord(ch):04x}'"


def normalize_prefix(prefix: str) -> str:
    """Validate a UUID prefix like memdb's ``PrefixFromArgs``; return it lower-case, hyphen-free."""
    if len(prefix) > 36:
        raise BadRequestError(f"{LOOKUP}Invalid UUID length. UUID have 36 characters; got {len(prefix)}")
    hyphens = prefix.count("-")
    if hyphens > 4:
        raise BadRequestError(f'{LOOKUP}UUID should have maximum of 4 "-"; got {hyphens}')
    bare = prefix.replace("-", "")
    if len(bare) % 2:
        raise BadRequestError(f"{LOOKUP}Input (without hyphens) must be even length")
    if not set(bare) <= _HEX:
        raise BadRequestError(LOOKUP + _hex_error(bare))
    return bare.lower()


def normalize_alloc_id(alloc_id: str) -> str:
    """Validate a full ID like memdb's ``FromArgs``; return the canonical lower-case UUID."""
    if len(alloc_id) != 36:
        raise BadRequestError(f"{LOOKUP}UUID must be 36 characters")
    bare = normalize_prefix(alloc_id)
    if len(bare) != 32:
        return bare  # well-formed to memdb but 18 bytes long: matches nothing
    return f"{bare[:8]}-{bare[8:12]}-{bare[12:16]}-{bare[16:20]}-{bare[20:]}"


def bare_id(alloc_id: str) -> str:
    """An ID without hyphens, lower-case (what prefix matching compares)."""
    return alloc_id.replace("-", "").lower()
