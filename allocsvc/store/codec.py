"""The one place that turns logged events into bytes and back (msgpack, tagged by class name).

Owns the encoder/decoder instances (built once, per msgspec's perf tips) and the schema version.
Decoding accepts every ``Event`` subclass defined anywhere in allocsvc, found by walking the
class tree, so a module that adds events only has to be imported.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

import msgspec

from allocsvc.domain.events import Event
from allocsvc.errors import LogCorruptError

FORMAT_VERSION = 1
"""Version of the on-disk record format (see design/event-log.md)."""

_encoder = msgspec.msgpack.Encoder()


def all_event_types() -> tuple[type[Event], ...]:
    """Every concrete Event class, found by walking subclasses."""
    found: list[type[Event]] = []
    stack: list[type[Event]] = [Event]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if not sub.__subclasses__() or sub.__struct_config__.tag is not None:
                found.append(sub)
    return tuple(sorted(set(found), key=lambda c: c.__name__))


@cache
def _decoder(types: tuple[type[Event], ...]) -> msgspec.msgpack.Decoder[Any]:
    concrete = tuple(t for t in types if not t.__subclasses__())
    return msgspec.msgpack.Decoder(type=concrete[0] if len(concrete) == 1 else _union(concrete))


def _union(types: tuple[type[Event], ...]) -> Any:
    union: Any = types[0]
    for t in types[1:]:
        union = union | t
    return union


def encode_event(event: Event) -> bytes:
    """Encode one event as tagged msgpack."""
    return _encoder.encode(event)


_known: list[tuple[type[Event], ...]] = []
"""The event classes the current decoder was built for (walking the tree per decode costs 10 µs)."""

_decode: list[Callable[[bytes], Any]] = []
"""The current decoder's ``decode`` (one lookup per event: replay decodes millions)."""


def _refresh() -> bool:
    """Build the decoder for the event classes defined now; whether they changed since the last build."""
    current = all_event_types()
    if _known and current == _known[0]:
        return False
    _known[:] = [current]
    _decode[:] = [_decoder(current).decode]
    return True


def decode_event(data: bytes) -> Event:
    """Decode one event; raises msgspec.DecodeError/ValidationError on bad data.

    The decoder is rebuilt only when a decode fails and event classes were imported since.
    """
    if not _decode:
        _refresh()
    try:
        result: Event = _decode[0](data)
    except msgspec.ValidationError:
        if not _refresh():
            raise
        result = _decode[0](data)
    return result


checksum: Callable[[bytes], int] = zlib.crc32
"""CRC32 stored beside each record so corruption is named, not decoded into garbage: ``zlib.crc32``
itself (a Python wrapper cost ~3 % of reading a record)."""


def event_tag(event: Event) -> str:
    """The stable tag of an event (its class name at the time it was first logged)."""
    tag = type(event).__struct_config__.tag
    return str(tag)


def verified_event(data: bytes, crc: int, index: int) -> Event:
    """The event stored at ``index``, after its checksum; a corrupt record is named by position.

    Every reader of the log (replay, history, the log tools) checks records through this.
    """
    if checksum(data) != crc:
        raise LogCorruptError("checksum mismatch", position=index)
    try:
        return decode_event(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise LogCorruptError(f"undecodable event: {exc}", position=index) from exc
