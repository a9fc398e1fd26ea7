"""Nomad's ACL JSON: token and policy shapes out, Go-``encoding/json``-style request bodies in.

Owns the response structs (declaration order, Nomad field names) and ``decode_object`` /
``go_field`` for request bodies, which Go decodes case-insensitively, ignoring unknown keys.
A full token is written the way Nomad's ``ACLToken.MarshalJSON`` writes it (go-msgpack defers to
it): ``ExpirationTTL`` first as a Go duration string (``""`` when zero), ``ExpirationTime``
omitted when unset, ``<``/``>``/``&`` escaped. List stubs and policies use the ordinary encoder.
No response ever carries a stored secret: only a create or bootstrap response has ``SecretID``.
"""

from __future__ import annotations

import base64
import calendar
import re
from typing import Any

import msgspec

from allocsvc.acl import Policy, policy_to_json
from allocsvc.domain.acl_state import ACLPolicyRecord, ACLTokenRecord
from allocsvc.gocompat import SECOND, format_duration, parse_duration, rfc3339nano
from allocsvc.views.wire import encode

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go ``encoding/json`` of a zero ``time.Time``."""

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")


class TokenJSON(msgspec.Struct, kw_only=True):
    """``structs.ACLToken`` through its ``MarshalJSON``."""

    ExpirationTTL: str
    AccessorID: str
    SecretID: str
    Name: str
    Type: str
    Policies: list[str] | None
    Roles: list[dict[str, str]] | None
    Global: bool
    Hash: str | None
    CreateTime: str
    ExpirationTime: str | msgspec.UnsetType = msgspec.UNSET
    CreateIndex: int
    ModifyIndex: int


class TokenStubJSON(msgspec.Struct, kw_only=True):
    """``structs.ACLTokenListStub`` (``ExpirationTime`` omitted when unset, as a dev build does)."""

    AccessorID: str
    Name: str
    Type: str
    Policies: list[str] | None
    Roles: list[dict[str, str]] | None
    Global: bool
    Hash: str | None
    CreateTime: str | None
    ExpirationTime: str | msgspec.UnsetType = msgspec.UNSET
    CreateIndex: int
    ModifyIndex: int


class PolicyJSON(msgspec.Struct, kw_only=True):
    """``structs.ACLPolicy`` as ``GET /v1/acl/policy/:name`` returns it."""

    Name: str
    Description: str
    Rules: str
    RulesJSON: dict[str, Any] | None
    JobACL: None
    Hash: str
    CreateIndex: int
    ModifyIndex: int


class PolicyStubJSON(msgspec.Struct, kw_only=True):
    """``structs.ACLPolicyListStub``."""

    Name: str
    Description: str
    Hash: str
    CreateIndex: int
    ModifyIndex: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encode_go_std(value: Any) -> bytes:
    """Go ``encoding/json`` bytes: our encoder plus its HTML escaping of ``<``, ``>`` and ``&``."""
    return encode(value).replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


def token_json(token: ACLTokenRecord, *, secret_id: str = "") -> TokenJSON:
    """A full token; ``secret_id`` is filled only by create and bootstrap (the log has no secret)."""
    return TokenJSON(
        ExpirationTTL=format_duration(token.expiration_ttl) if token.expiration_ttl else "",
        AccessorID=token.accessor_id,
        SecretID=secret_id,
        Name=token.name,
        Type=token.type,
        Policies=None if token.policies is None else list(token.policies),
        Roles=None,
        Global=token.global_,
        Hash=_b64(token.hash),
        CreateTime=rfc3339nano(token.create_time),
        ExpirationTime=rfc3339nano(token.expiration_time) if token.expiration_time else msgspec.UNSET,
        CreateIndex=token.create_index,
        ModifyIndex=token.modify_index,
    )


def anonymous_token_json() -> TokenJSON:
    """Nomad's ``AnonymousACLToken`` (no secret, zero create time, nil hash)."""
    return TokenJSON(
        ExpirationTTL="",
        AccessorID="anonymous",
        SecretID="",
        Name="Anonymous Token",
        Type="client",
        Policies=["anonymous"],
        Roles=None,
        Global=False,
        Hash=None,
        CreateTime=ZERO_TIME,
        CreateIndex=0,
        ModifyIndex=0,
    )


def token_stub_json(token: ACLTokenRecord) -> TokenStubJSON:
    """One entry of ``GET /v1/acl/tokens``."""
    return TokenStubJSON(
        AccessorID=token.accessor_id,
        Name=token.name,
        Type=token.type,
        Policies=None if token.policies is None else list(token.policies),
        Roles=None,
        Global=token.global_,
        Hash=_b64(token.hash),
        CreateTime=rfc3339nano(token.create_time) if token.create_time else None,
        ExpirationTime=rfc3339nano(token.expiration_time) if token.expiration_time else msgspec.UNSET,
        CreateIndex=token.create_index,
        ModifyIndex=token.modify_index,
    )


def policy_json(record: ACLPolicyRecord, parsed: Policy) -> PolicyJSON:
    """``GET /v1/acl/policy/:name``: the stored policy plus its parsed rules."""
    return PolicyJSON(
        Name=record.name,
        Description=record.description,
        Rules=record.rules,
        RulesJSON=policy_to_json(parsed),
        JobACL=None,
        Hash=_b64(record.hash),
        CreateIndex=record.create_index,
        ModifyIndex=record.modify_index,
    )


def policy_stub_json(record: ACLPolicyRecord) -> PolicyStubJSON:
    """One entry of ``GET /v1/acl/policies``."""
    return PolicyStubJSON(
        Name=record.name,
        Description=record.description,
        Hash=_b64(record.hash),
        CreateIndex=record.create_index,
        ModifyIndex=record.modify_index,
    )


# --- request bodies ---------------------------------------------------------------------------------


def decode_object(data: bytes) -> dict[str, Any]:
    """Decode a JSON object body; raises BadRequestError-compatible messages (no prefix).

    An empty body is Nomad's ``Request body is empty``; a whitespace-only one is Go's ``EOF``.
    """
    if not data:
        raise ValueError("Request body is empty")
    if not data.strip():
        raise ValueError("EOF")
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"json: cannot unmarshal {_go_kind(value)} into Go value of type {{struct}}")
    return value


def _go_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def go_field(obj: dict[str, Any], name: str) -> Any:
    """A key as Go's decoder finds it: exact name first, then a case-insensitive match."""
    if name in obj:
        return obj[name]
    lower = name.lower()
    for key, value in obj.items():
        if key.lower() == lower:
            return value
    return None


def _type_error(struct: str, field: str, value: object, go_type: str) -> ValueError:
    return ValueError(f"json: cannot unmarshal {_go_kind(value)} into Go struct field {struct}.{field} of type {go_type}")


def str_field(obj: dict[str, Any], struct: str, name: str) -> str:
    """A string field (null or absent: empty)."""
    value = go_field(obj, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _type_error(struct, name, value, "string")
    return value


def bool_field(obj: dict[str, Any], struct: str, name: str) -> bool:
    """A bool field (null or absent: false)."""
    value = go_field(obj, name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _type_error(struct, name, value, "bool")
    return value


def str_list_field(obj: dict[str, Any], struct: str, name: str) -> tuple[str, ...] | None:
    """A ``[]string`` field (null or absent: nil)."""
    value = go_field(obj, name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _type_error(struct, name, value, "[]string")
    for item in value:
        if not isinstance(item, str):
            raise _type_error(struct, name, item, "string")
    return tuple(value)


def duration_field(obj: dict[str, Any], name: str) -> int:
    """``ACLToken.UnmarshalJSON``'s ExpirationTTL: a Go duration string or a number of ns."""
    value = go_field(obj, name)
    if isinstance(value, str):
        return parse_duration(value) if value else 0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return 0


def time_field(obj: dict[str, Any], struct: str, name: str) -> int:
    """An RFC 3339 ``*time.Time`` as Unix ns (null or absent: 0)."""
    value = go_field(obj, name)
    if value is None:
        return 0
    if not isinstance(value, str):
        raise _type_error(struct, name, value, "time.Time")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse "{value}"')
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    frac, zone = match.group(7) or "", match.group(8)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * SECOND + int(frac.ljust(9, "0") or "0")
