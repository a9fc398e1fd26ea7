"""Parsing Nomad's query parameters (``s.parse``): blocking, pagination, booleans, token.

Owns the exact 400 texts for bad ``stale``/``per_page``/``wait``/``index`` and our deliberate
400 (Nomad: 500) for bad booleans. See design/compat.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from werkzeug.datastructures import Headers

from allocsvc.errors import BadRequestError
from allocsvc.gocompat import SECOND, GoSyntaxError, parse_bool, parse_duration
from allocsvc.views.blocking import QueryOptions

HeaderLookup = Headers | Mapping[str, str]
"""Request headers: Quart's ``Headers`` or a plain mapping."""


class ListOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The common read parameters of ``GET /v1/allocations`` and friends."""

    query: QueryOptions
    stale: bool = False
    prefix: str = ""
    namespace: str = "default"
    per_page: int = 0
    next_token: str = ""
    filter: str = ""
    reverse: bool = False


def parse_query(args: Mapping[str, str]) -> QueryOptions:
    """``index`` and ``wait`` with Nomad's error texts."""
    wait_seconds = 0.0
    if args.get("wait", ""):
        try:
            wait_seconds = parse_duration(args["wait"]) / SECOND
        except GoSyntaxError as exc:
            raise BadRequestError("Invalid wait time") from exc
    min_index = 0
    if args.get("index", ""):
        text = args["index"]
        if not text.isdigit() or int(text) >= 2**64:
            raise BadRequestError("Invalid index")
        min_index = int(text)
    return QueryOptions(min_index=min_index, wait_seconds=wait_seconds)


def parse_list_options(args: Mapping[str, str]) -> ListOptions:
    """All of Nomad's ``parse`` in its order: stale, prefix, namespace, paging, filter, wait, index."""
    stale = False
    if "stale" in args:
        value = args["stale"]
        if value == "":
            stale = True
        else:
            try:
                stale = parse_bool(value)
            except GoSyntaxError as exc:
                raise BadRequestError("Expect `true` or `false` for `stale` query string parameter") from exc
    per_page = 0
    if args.get("per_page", ""):
        try:
            per_page = int(args["per_page"], 10)
            if not -(2**31) <= per_page < 2**31:
                raise ValueError
        except ValueError as exc:
            raise BadRequestError("Expect a number for `per_page` query string parameter") from exc
    return ListOptions(
        query=parse_query(args),
        stale=stale,
        prefix=args.get("prefix", ""),
        namespace=args.get("namespace", "") or "default",
        per_page=per_page,
        next_token=args.get("next_token", ""),
        filter=args.get("filter", ""),
        reverse=args.get("reverse", "") == "true",
    )


def bool_param(args: Mapping[str, str], name: str, default: bool) -> bool:
    """Nomad's ``parseBool``: empty means default; bad values are a 400 here (Nomad: 500)."""
    value = args.get(name, "")
    if value == "":
        return default
    try:
        return parse_bool(value)
    except GoSyntaxError as exc:
        raise BadRequestError(f'Failed to parse value of "{name}" ({value}) as a bool: {exc}') from exc


def request_token(headers: HeaderLookup) -> str:
    """The ACL secret from ``X-Nomad-Token`` or ``Authorization: Bearer`` (FACTS §5.1)."""
    token = headers.get("X-Nomad-Token", "").strip()
    if token:
        return token
    auth = headers.get("Authorization", "").strip()
    scheme, _, rest = auth.partition(" ")
    if scheme.lower() == "bearer":
        parts = rest.split()
        return parts[0] if parts else ""
    return ""
