"""Serialised ACL writes (bootstrap, policies, tokens) and the token-expiry wake-up.

Owns ``ACLManager``, exposed as ``service.acl``: reads go to its ``ACLResolver``; writes run one
at a time under a lock (like an actor), validate with Nomad's texts (``nomad/acl_endpoint.go``,
``structs.ACLPolicy.Validate``, ``structs.ACLToken.Validate``), then append ``acl/…`` events. The
HTTP layer checks management permission before calling a write. ``run_expiry_notifier`` fires the
``table:acl`` watch key when a token reaches its expiration time, so blocking queries, streams
and exec sessions waiting on that key re-check their token.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import trio

from allocsvc.acl import PolicyError, parse_policy
from allocsvc.actors.runtime import Runtime
from allocsvc.domain import acl_events as acl_ev
from allocsvc.domain.acl_state import CLIENT, MANAGEMENT, ACLState, ACLTokenRecord
from allocsvc.domain.events import Event
from allocsvc.errors import BadRequestError
from allocsvc.gocompat import HOUR, MINUTE, format_duration
from allocsvc.store.log import StreamWrite
from allocsvc.views.acl_resolver import ACLResolver, TokenAuthorizer
from allocsvc.views.blocking import ACL_WATCH_KEY

BOOTSTRAP_RESET_FILE = "acl-bootstrap-reset"
TOKEN_MIN_EXPIRATION_TTL = MINUTE
"""Nomad's default ``acl.token_min_expiration_ttl``."""
TOKEN_MAX_EXPIRATION_TTL = 24 * HOUR
"""Nomad's default ``acl.token_max_expiration_ttl``."""
MAX_TOKEN_NAME_LENGTH = 256
MAX_POLICY_DESCRIPTION_LENGTH = 256
_VALID_POLICY_NAME = re.compile(r"[a-zA-Z0-9-]{1,128}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LEADING_INT = re.compile(r"\s*\+?(\d+)")
_EXPIRY_MARGIN = 0.001
"""Seconds past an expiration time before notifying (Nomad's check is strictly-before)."""


def multierror(errors: list[str]) -> str:
    """go-multierror's default format."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"


def is_uuid(text: str) -> bool:
    """Nomad ``helper.IsUUID``."""
    return _UUID.fullmatch(text) is not None


class RoleLink(msgspec.Struct, frozen=True, kw_only=True):
    """A token's link to an ACL role, by ID or name (roles are not implemented: none exist)."""

    id: str = ""
    name: str = ""


class TokenRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A token create (no ``accessor_id``) or update, as decoded from the request body."""

    accessor_id: str = ""
    name: str = ""
    type: str = ""
    policies: tuple[str, ...] | None = None
    roles: tuple[RoleLink, ...] = ()
    global_: bool = False
    expiration_time: int = 0
    expiration_ttl: int = 0


class TokenWritten(msgspec.Struct, frozen=True, kw_only=True):
    """A committed token write; ``secret_id`` is set only when the token was just created."""

    token: ACLTokenRecord
    secret_id: str
    index: int


class ACLManager:
    """ACL reads (via the resolver) and serialised ACL writes."""

    def __init__(self, rt: Runtime, resolver: ACLResolver) -> None:
        self.rt = rt
        self.resolver = resolver
        self._lock = trio.Lock()
        self._tokens_changed = trio.Event()

    @property
    def state(self) -> ACLState:
        """The folded ACL state."""
        return self.rt.model.state.acl

    def resolve(self, secret: str) -> TokenAuthorizer:
        """Resolve a request's secret; raises PermissionDeniedError (see ACLResolver.resolve)."""
        return self.resolver.resolve(secret)

    async def _append(self, stream: str, events: list[Event], now: int) -> int:
        write = StreamWrite(stream, self.rt.log.stream_version(stream), events)
        records = await self.rt.log.append([write], time=now)
        if stream.startswith("acl/token/") or stream == acl_ev.BOOTSTRAP_STREAM:
            self._tokens_changed.set()
            self._tokens_changed = trio.Event()
        return records[-1].index

    # --- bootstrap ------------------------------------------------------------------------------

    def _reset_file_index(self) -> int:
        """``<data_dir>/acl-bootstrap-reset`` parsed like Go's ``Sscanf("%d")``; 0 when absent or bad."""
        if self.rt.data_dir is None:
            return 0
        try:
            text = (Path(self.rt.data_dir) / BOOTSTRAP_RESET_FILE).read_text()
        except OSError:
            return 0
        match = _LEADING_INT.match(text)
        return int(match.group(1)) if match else 0

    async def bootstrap(self, bootstrap_secret: str = "") -> TokenWritten:
        """Create the initial management token, once (again only with a matching reset file).

        Raises:
            BadRequestError: already bootstrapped, wrong reset index, or a non-UUID secret.
        """
        async with self._lock:
            reset_index = self.state.bootstrap_index
            if reset_index:
                specified = self._reset_file_index()
                if specified == 0:
                    raise BadRequestError(f"ACL bootstrap already done (reset index: {reset_index})")
                if specified != reset_index:
                    raise BadRequestError(
                        f"Invalid bootstrap reset index (specified {specified}, reset index: {reset_index})"
                    )
            accessor, secret = self.rt.new_id(), self.rt.new_id()
            if bootstrap_secret:
                if not is_uuid(bootstrap_secret):
                    raise BadRequestError("invalid acl token")
                secret = bootstrap_secret
            now = self.rt.clock.now_ns()
            token = acl_ev.LoggedToken(
                accessor_id=accessor,
                secret_sha256=acl_ev.secret_digest(secret),
                name="Bootstrap Token",
                type=MANAGEMENT,
                global_=True,
                create_time=now,
            )
            index = await self._append(acl_ev.BOOTSTRAP_STREAM, [acl_ev.ACLBootstrapped(token=token)], now)
            return TokenWritten(token=self.state.tokens[accessor], secret_id=secret, index=index)

    # --- policies -------------------------------------------------------------------------------

    async def upsert_policy(self, name: str, description: str, rules: str) -> int:
        """Validate (``policy 0 invalid: …``) and store a policy; returns the write index."""
        errors = []
        if _VALID_POLICY_NAME.fullmatch(name) is None:
            errors.append(f"invalid name '{name}'")
        try:
            parse_policy(rules, strict=True)
        except PolicyError as exc:
            errors.append(f"failed to parse rules: {exc.message}")
        if len(description.encode()) > MAX_POLICY_DESCRIPTION_LENGTH:
            errors.append(f"description longer than {MAX_POLICY_DESCRIPTION_LENGTH}")
        if errors:
            raise BadRequestError(f"policy 0 invalid: {multierror(errors)}")
        async with self._lock:
            event = acl_ev.ACLPolicyUpserted(name=name, description=description, rules=rules)
            return await self._append(acl_ev.policy_stream(name), [event], self.rt.clock.now_ns())

    async def delete_policy(self, name: str) -> int:
        """Delete a policy (a missing one is a no-op write, as in Nomad's state store)."""
        async with self._lock:
            event = acl_ev.ACLPolicyDeleted(name=name)
            return await self._append(acl_ev.policy_stream(name), [event], self.rt.clock.now_ns())

    # --- tokens ---------------------------------------------------------------------------------

    async def upsert_token(self, req: TokenRequest) -> TokenWritten:
        """Create (no accessor) or update a token with Nomad's validation.

        Raises:
            BadRequestError: ``cannot find token …``, ``token 0 invalid: …``, ``cannot find role …``.
        """
        async with self._lock:
            existing = None
            if req.accessor_id:
                existing = self.state.tokens.get(req.accessor_id)
                if existing is None:
                    raise BadRequestError(f"cannot find token {req.accessor_id}")
            now = self.rt.clock.now_ns()
            secret = ""
            if existing is None:
                accessor, secret, create_time = self.rt.new_id(), self.rt.new_id(), now
                expiration = req.expiration_time
                if expiration == 0 and req.expiration_ttl != 0:
                    expiration = create_time + req.expiration_ttl
            else:
                accessor, create_time, expiration = existing.accessor_id, existing.create_time, req.expiration_time
            errors = _token_errors(req, existing, create_time, expiration)
            if errors:
                raise BadRequestError(f"token 0 invalid: {multierror(errors)}")
            if req.roles:
                link = req.roles[0]
                raise BadRequestError(f"cannot find role {link.id or link.name}")
            token = acl_ev.LoggedToken(
                accessor_id=accessor,
                secret_sha256=acl_ev.secret_digest(secret) if existing is None else existing.secret_sha256,
                name=req.name,
                type=req.type,
                policies=req.policies,
                global_=req.global_,
                create_time=create_time,
                expiration_time=expiration,
                expiration_ttl=req.expiration_ttl,
            )
            index = await self._append(acl_ev.token_stream(accessor), [acl_ev.ACLTokenUpserted(token=token)], now)
            return TokenWritten(token=self.state.tokens[accessor], secret_id=secret, index=index)

    async def delete_token(self, accessor_id: str) -> int:
        """Delete a token; its secret stops resolving at once.

        Raises:
            BadRequestError: ``Cannot delete nonexistent tokens: <accessor>``.
        """
        async with self._lock:
            if accessor_id not in self.state.tokens:
                raise BadRequestError(f"Cannot delete nonexistent tokens: {accessor_id}")
            event = acl_ev.ACLTokenDeleted(accessor_id=accessor_id)
            return await self._append(acl_ev.token_stream(accessor_id), [event], self.rt.clock.now_ns())

    # --- expiry ---------------------------------------------------------------------------------

    async def run_expiry_notifier(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire ``table:acl`` each time a token reaches its expiration time (runs forever).

        Sleeps until the next expiration, re-planning after every token write (tokens are only
        written here), and holds no watch of its own, so the hub's statistics count real waiters.
        """
        task_status.started()
        while True:
            changed = self._tokens_changed
            now = self.rt.clock.now_ns()
            expiry = self.state.next_expiry_after(now)
            if expiry is None:
                await changed.wait()
                continue
            with trio.move_on_after((expiry - now) / 1e9 + _EXPIRY_MARGIN):
                await changed.wait()
                continue
            self.rt.model.hub.notify((ACL_WATCH_KEY,))


def _token_errors(
    req: TokenRequest, existing: ACLTokenRecord | None, create_time: int, expiration: int
) -> list[str]:
    """Nomad ``ACLToken.Validate`` with its default min/max TTL (1m / 24h)."""
    errors = []
    if len(req.name.encode()) > MAX_TOKEN_NAME_LENGTH:
        errors.append("token name too long")
    if req.type == CLIENT:
        if not req.policies and not req.roles:
            errors.append("client token missing policies or roles")
    elif req.type == MANAGEMENT:
        if req.policies or req.roles:
            errors.append("management token cannot be associated with policies or roles")
    else:
        errors.append("token type must be client or management")
    if existing is None:
        if req.expiration_ttl < 0:
            errors.append(f"token expiration TTL '{format_duration(req.expiration_ttl)}' should not be negative")
        if expiration != 0:
            if create_time > expiration:
                errors.append("expiration time cannot be before create time")
            expires_in = expiration - create_time
            if expires_in > TOKEN_MAX_EXPIRATION_TTL:
                errors.append(
                    f"expiration time cannot be more than {format_duration(TOKEN_MAX_EXPIRATION_TTL)} "
                    f"in the future (was {format_duration(expires_in)})"
                )
            elif expires_in < TOKEN_MIN_EXPIRATION_TTL:
                errors.append(
                    f"expiration time cannot be less than {format_duration(TOKEN_MIN_EXPIRATION_TTL)} "
                    f"in the future (was {format_duration(expires_in)})"
                )
    else:
        if existing.global_ != req.global_:
            errors.append("cannot toggle global mode")
        if existing.expiration_ttl != req.expiration_ttl:
            errors.append("cannot update expiration TTL")
        if existing.expiration_time != expiration:
            errors.append("cannot update expiration time")
    return errors
