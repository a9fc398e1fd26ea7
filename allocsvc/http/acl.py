"""Nomad's ACL endpoints: bootstrap, policies and tokens (``command/agent/acl_endpoint.go``).

Owns ``/v1/acl/bootstrap``, ``/v1/acl/policies``, ``/v1/acl/policy/:name``, ``/v1/acl/tokens``,
``/v1/acl/token``, ``/v1/acl/token/self`` and ``/v1/acl/token/:accessor``. Checks run in Nomad's
order: method, body, ``ACL support disabled``, authentication (bogus or expired secret: 403),
management where Nomad's RPC requires it, then the write or the (blocking) read. Writes go to
``service.acl`` (``allocsvc.actors.acl``); reads come from the folded ACL state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, request

from allocsvc.actors.acl import RoleLink, TokenRequest
from allocsvc.domain.acl_state import ACLPolicyRecord, ACLTokenRecord
from allocsvc.errors import BadRequestError, MethodNotAllowedError, PermissionDeniedError
from allocsvc.http import acl_wire as wire
from allocsvc.http.query import parse_list_options, request_token
from allocsvc.http.responses import (
    empty_response,
    error_response,
    json_bytes_response,
    json_response,
    meta_headers,
)
from allocsvc.views.acl_resolver import ANONYMOUS_POLICY, TokenAuthorizer
from allocsvc.views.blocking import ACL_WATCH_KEY, QueryResult, blocking_query

if TYPE_CHECKING:
    from allocsvc.service import Service

ACL_DISABLED = "ACL support disabled"
_ANY = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]


async def _body() -> bytes:
    data: bytes = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    return data


def _decode(data: bytes, *, prefix: str = "") -> dict[str, Any]:
    try:
        return wire.decode_object(data)
    except ValueError as exc:
        raise BadRequestError(f"{prefix}{exc}") from exc


def _token_request(obj: dict[str, Any]) -> TokenRequest:
    """The fields of ``structs.ACLToken`` a create or update reads."""
    roles = wire.go_field(obj, "Roles")
    links: list[RoleLink] = []
    for item in roles if isinstance(roles, list) else []:
        if isinstance(item, dict):
            links.append(
                RoleLink(id=wire.str_field(item, "ACLTokenRoleLink", "ID"), name=wire.str_field(item, "ACLTokenRoleLink", "Name"))
            )
    return TokenRequest(
        accessor_id=wire.str_field(obj, "ACLToken", "AccessorID"),
        name=wire.str_field(obj, "ACLToken", "Name"),
        type=wire.str_field(obj, "ACLToken", "Type"),
        policies=wire.str_list_field(obj, "ACLToken", "Policies"),
        roles=tuple(links),
        global_=wire.bool_field(obj, "ACLToken", "Global"),
        expiration_time=wire.time_field(obj, "ACLToken", "ExpirationTime"),
        expiration_ttl=wire.duration_field(obj, "ExpirationTTL"),
    )


def acl_routes(service: Service) -> Blueprint:
    """The ACL endpoints bound to one service."""
    bp = Blueprint("acl", __name__)
    state = service.model.state

    def caller() -> TokenAuthorizer:
        """``ACL support disabled`` when off; else the resolved caller (403 for a bad secret)."""
        if not service.config.acl_enabled:
            raise BadRequestError(ACL_DISABLED)
        return service.acl.resolve(request_token(request.headers))

    def management() -> TokenAuthorizer:
        authz = caller()
        if not authz.is_management:
            raise PermissionDeniedError()
        return authz

    def recheck(authz: TokenAuthorizer) -> Callable[[], Awaitable[None]]:
        async def check() -> None:
            if not authz.still_valid():
                raise PermissionDeniedError()

        return check

    # --- bootstrap ------------------------------------------------------------------------------

    @bp.route("/v1/acl/bootstrap", methods=_ANY)
    async def bootstrap() -> Response:
        if request.method not in ("PUT", "POST"):
            raise MethodNotAllowedError()
        data = await _body()
        secret = ""
        if data:
            body = _decode(data, prefix="failed to decode request body: ")
            try:
                secret = wire.str_field(body, "ACLTokenBootstrapRequest", "BootstrapSecret")
            except ValueError as exc:
                raise BadRequestError(f"failed to decode request body: {exc}") from exc
        if not service.config.acl_enabled:
            raise BadRequestError(ACL_DISABLED)
        written = await service.acl.bootstrap(secret)
        body_bytes = wire.encode_go_std(wire.token_json(written.token, secret_id=written.secret_id))
        return json_bytes_response(body_bytes, headers={"X-Nomad-Index": str(written.index)})

    # --- policies -------------------------------------------------------------------------------

    @bp.route("/v1/acl/policies", methods=_ANY)
    async def list_policies() -> Response:
        if request.method != "GET":
            raise MethodNotAllowedError()
        opts = parse_list_options(request.args)
        authz = caller()
        allowed = None if authz.is_management else set(authz.policy_names)

        def run() -> QueryResult[list[wire.PolicyStubJSON]]:
            items = [
                wire.policy_stub_json(p)
                for name, p in sorted(state.acl.policies.items())
                if name.startswith(opts.prefix) and (allowed is None or name in allowed)
            ]
            return QueryResult(max(state.acl.policy_index, 1), items, (ACL_WATCH_KEY,))

        result = await blocking_query(service.model.hub, opts.query, run, recheck=recheck(authz))
        return json_response(result.value, headers=meta_headers(result.index))

    @bp.route("/v1/acl/policy/", defaults={"name": ""}, methods=_ANY)
    @bp.route("/v1/acl/policy/<path:name>", methods=_ANY)
    async def policy(name: str) -> Response:
        if not name:
            raise BadRequestError("Missing Policy Name")
        if request.method == "GET":
            return await read_policy(name)
        if request.method in ("PUT", "POST"):
            return await write_policy(name)
        if request.method == "DELETE":
            management()
            index = await service.acl.delete_policy(name)
            return empty_response(headers={"X-Nomad-Index": str(index)})
        raise MethodNotAllowedError()

    async def read_policy(name: str) -> Response:
        opts = parse_list_options(request.args)
        authz = caller()
        if not authz.is_management and name != ANONYMOUS_POLICY and name not in authz.policy_names:
            raise PermissionDeniedError()

        def run() -> QueryResult[ACLPolicyRecord | None]:
            record = state.acl.policies.get(name)
            if record is None:
                return QueryResult(state.acl.policy_index, None, (ACL_WATCH_KEY,))
            return QueryResult(record.modify_index, record, (ACL_WATCH_KEY,))

        result = await blocking_query(service.model.hub, opts.query, run, recheck=recheck(authz))
        headers = meta_headers(result.index)
        if result.value is None:
            return error_response(404, "ACL policy not found", headers=headers)
        parsed = service.acl.resolver.parsed(result.value)
        return json_response(wire.policy_json(result.value, parsed), headers=headers)

    async def write_policy(name: str) -> Response:
        body = _decode(await _body())
        try:
            body_name = wire.str_field(body, "ACLPolicy", "Name")
            description = wire.str_field(body, "ACLPolicy", "Description")
            rules = wire.str_field(body, "ACLPolicy", "Rules")
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
        if body_name != name:
            raise BadRequestError("ACL policy name does not match request path")
        management()
        if wire.go_field(body, "JobACL") is not None:
            raise BadRequestError("JobACL (workload identity policies) is not supported")
        index = await service.acl.upsert_policy(name, description, rules)
        return empty_response(headers={"X-Nomad-Index": str(index)})

    # --- tokens ---------------------------------------------------------------------------------

    @bp.route("/v1/acl/tokens", methods=_ANY)
    async def list_tokens() -> Response:
        if request.method != "GET":
            raise MethodNotAllowedError()
        opts = parse_list_options(request.args)
        authz = management()

        def run() -> QueryResult[tuple[list[wire.TokenStubJSON], str]]:
            page, next_token = _token_page(list(state.acl.tokens.values()), opts.prefix, opts.next_token, opts.per_page, opts.reverse)
            return QueryResult(state.acl.token_index, ([wire.token_stub_json(t) for t in page], next_token), (ACL_WATCH_KEY,))

        result = await blocking_query(service.model.hub, opts.query, run, recheck=recheck(authz))
        items, next_token = result.value
        return json_response(items, headers=meta_headers(result.index, next_token))

    @bp.route("/v1/acl/token", defaults={"accessor": None}, methods=_ANY)
    @bp.route("/v1/acl/token/", defaults={"accessor": ""}, methods=_ANY)
    @bp.route("/v1/acl/token/<path:accessor>", methods=_ANY)
    async def token(accessor: str | None) -> Response:
        if accessor is None:
            if request.method not in ("PUT", "POST"):
                raise MethodNotAllowedError()
            return await write_token("")
        if accessor == "self":
            return await token_self()
        if not accessor:
            raise BadRequestError("Missing Token Accessor")
        if request.method == "GET":
            return await read_token(accessor)
        if request.method in ("PUT", "POST"):
            return await write_token(accessor)
        if request.method == "DELETE":
            management()
            index = await service.acl.delete_token(accessor)
            return empty_response(headers={"X-Nomad-Index": str(index)})
        raise MethodNotAllowedError()

    async def write_token(accessor: str) -> Response:
        body = _decode(await _body())
        try:
            req = _token_request(body)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
        if accessor and req.accessor_id != accessor:
            raise BadRequestError("ACL token accessor does not match request path")
        management()
        written = await service.acl.upsert_token(req)
        body_bytes = wire.encode_go_std(wire.token_json(written.token, secret_id=written.secret_id))
        return json_bytes_response(body_bytes, headers={"X-Nomad-Index": str(written.index)})

    async def read_token(accessor: str) -> Response:
        opts = parse_list_options(request.args)
        authz = caller()

        def run() -> QueryResult[ACLTokenRecord | None]:
            found = state.acl.tokens.get(accessor)
            if found is None:
                if not authz.is_management:
                    raise PermissionDeniedError()
                return QueryResult(state.acl.token_index, None, (ACL_WATCH_KEY,))
            own = authz.token is not None and authz.token.secret_sha256 == found.secret_sha256
            if not authz.is_management and not own:
                raise PermissionDeniedError()
            return QueryResult(found.modify_index, found, (ACL_WATCH_KEY,))

        result = await blocking_query(service.model.hub, opts.query, run, recheck=recheck(authz))
        headers = meta_headers(result.index)
        if result.value is None:
            return error_response(404, "ACL token not found", headers=headers)
        return json_bytes_response(wire.encode_go_std(wire.token_json(result.value)), headers=headers)

    async def token_self() -> Response:
        if request.method != "GET":
            raise MethodNotAllowedError()
        parse_list_options(request.args)
        authz = caller()
        if authz.token is None:
            return json_bytes_response(
                wire.encode_go_std(wire.anonymous_token_json()), headers=meta_headers(state.acl.token_index)
            )
        headers = meta_headers(authz.token.modify_index)
        return json_bytes_response(wire.encode_go_std(wire.token_json(authz.token)), headers=headers)

    return bp


def _token_page(
    tokens: list[ACLTokenRecord], prefix: str, next_token: str, per_page: int, reverse: bool
) -> tuple[list[ACLTokenRecord], str]:
    """Nomad's token listing: accessor order with a prefix, else (CreateIndex, AccessorID) order."""
    if prefix:
        ordered = sorted((t for t in tokens if t.accessor_id.startswith(prefix)), key=lambda t: t.accessor_id)

        def key(t: ACLTokenRecord) -> str:
            return t.accessor_id
    else:
        ordered = sorted(tokens, key=lambda t: (t.create_index, t.accessor_id))

        def key(t: ACLTokenRecord) -> str:
            return f"{t.create_index}.{t.accessor_id}"

    if reverse:
        ordered.reverse()
    page: list[ACLTokenRecord] = []
    for t in ordered:
        if next_token and not _at_or_after(key(t), next_token, by_id=bool(prefix), reverse=reverse):
            continue
        if (per_page and len(page) >= per_page) or per_page < 0:
            return page, key(t)
        page.append(t)
    return page, ""


def _at_or_after(own: str, token: str, *, by_id: bool, reverse: bool) -> bool:
    """The paginator's comparison: ``CreateIndex.ID`` numerically when both parse, else as strings."""
    cmp = (own > token) - (own < token)
    if not by_id:
        head, dot, rest = token.partition(".")
        if dot and head.isdigit():
            mine_head, _, mine_rest = own.partition(".")
            mine, theirs = (int(mine_head), mine_rest), (int(head), rest)
            cmp = (mine > theirs) - (mine < theirs)
    return cmp <= 0 if reverse else cmp >= 0
