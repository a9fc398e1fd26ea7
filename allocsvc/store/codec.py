"""The one place that turns logged events into bytes and back (msgpack, tagged by class name).

Owns the encoder/decoder instances (built once, per msgspec's perf tips) and the schema version.
Decoding accepts every ``Event`` subclass defined anywhere in allocsvc, found by walking the
class tree, so a module that adds events only has to be imported.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import Any

import msgspec

from allocsvc.domain.events import Event

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


def decode_event(data: bytes) -> Event:
    """Decode one event; raises msgspec.DecodeError/ValidationError on bad data.

    The decoder is rebuilt only when a decode fails and event classes were imported since.
    """
    if not _known:
        _known.append(all_event_types())
    try:
        result: Event = _decoder(_known[0]).decode(data)
    except msgspec.ValidationError:
        current = all_event_types()
        if current == _known[0]:
            raise
        _known[0] = current
        result = _decoder(current).decode(data)
    return result


def checksum(data: bytes) -> int:
    """CRC32 stored beside each record so corruption is named, not decoded into garbage."""
    return zlib.crc32(data)


def event_tag(event: Event) -> str:
    """The stable tag of an event (its class name at the time it was first logged)."""
    tag = type(event).__struct_config__.tag
    return str(tag)
