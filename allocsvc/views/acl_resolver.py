"""Who is calling, when ACLs are on: a secret resolved into an authorizer, from the read model.

Owns ``ACLResolver`` (``service.acl.resolve``'s implementation) and ``TokenAuthorizer`` (the
``allocsvc.http.auth.Authorizer`` every endpoint checks). Resolution follows Nomad's
``Authenticate`` + ``ResolveACL``: no secret is the anonymous token governed by the policy named
``anonymous``; an unknown or expired secret is 403 ``Permission denied``; a management token is
allowed everything. Policies are parsed here (once per policy version) because the domain fold
keeps rules as text. ``still_valid()`` lets long-lived operations re-check that their token still
exists and has not expired; they wake on the ``table:acl`` watch key, which also fires when a token
reaches its expiration time (``allocsvc.actors.acl``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from allocsvc.acl import ACL, Policy, parse_policy
from allocsvc.domain.acl_state import ACLPolicyRecord, ACLState, ACLTokenRecord
from allocsvc.errors import PermissionDeniedError
from allocsvc.views.read_model import ReadModel

ANONYMOUS_ACCESSOR = "anonymous"
ANONYMOUS_POLICY = "anonymous"
_MAX_CACHED_ACLS = 1024


class TokenAuthorizer:
    """One caller's permissions: the compiled ACL of its token as of resolution (a snapshot, as
    Nomad's RPCs take), plus a liveness re-check."""

    __slots__ = ("_acl", "_resolver", "accessor_id", "is_management", "token")

    def __init__(self, resolver: ACLResolver, token: ACLTokenRecord | None, acl: ACL) -> None:
        self._resolver = resolver
        self._acl = acl
        #: The caller's token; None for the anonymous token.
        self.token = token
        self.accessor_id = ANONYMOUS_ACCESSOR if token is None else token.accessor_id
        self.is_management = acl.is_management

    @property
    def policy_names(self) -> tuple[str, ...]:
        """The policy names the caller's token links (``anonymous`` for the anonymous token)."""
        if self.token is None:
            return (ANONYMOUS_POLICY,)
        return self.token.policies or ()

    def allow_namespace_op(self, namespace: str, capability: str) -> bool:
        """Whether the caller holds ``capability`` in ``namespace`` (``*``: in any namespace)."""
        return self._acl.allow_namespace_op(namespace, capability)

    def allowed_namespaces(self, capability: str, existing: Iterable[str]) -> set[str]:
        """The existing namespaces where the caller holds ``capability``."""
        return self._acl.allowed_namespaces(capability, existing)

    def still_valid(self) -> bool:
        """False once the token was deleted, had its secret replaced, or expired."""
        return self._resolver.still_valid(self.token)


class ACLResolver:
    """Resolves secrets against the live ACL state; compiled ACLs are cached per policy version."""

    def __init__(self, model: ReadModel, now_ns: Callable[[], int]) -> None:
        self._model = model
        self._now_ns = now_ns
        self._parsed: dict[str, tuple[int, Policy]] = {}
        self._compiled: dict[tuple[tuple[str, int], ...], ACL] = {}

    @property
    def state(self) -> ACLState:
        """The folded ACL state."""
        return self._model.state.acl

    def now_ns(self) -> int:
        """Current Unix time in nanoseconds (the service clock)."""
        return self._now_ns()

    def resolve(self, secret: str) -> TokenAuthorizer:
        """The authorizer of a secret ("" is anonymous).

        Raises:
            PermissionDeniedError: the secret matches no token, or its token has expired.
        """
        if not secret:
            return TokenAuthorizer(self, None, self.acl_for((ANONYMOUS_POLICY,)))
        token = self.state.token_by_secret(secret)
        if token is None or token.expired(self.now_ns()):
            raise PermissionDeniedError()
        if token.is_management:
            return TokenAuthorizer(self, token, ACL.management())
        return TokenAuthorizer(self, token, self.acl_for(token.policies or ()))

    def still_valid(self, token: ACLTokenRecord | None) -> bool:
        """Whether a previously resolved token would still resolve (anonymous always does)."""
        if token is None:
            return True
        current = self.state.tokens.get(token.accessor_id)
        return (
            current is not None
            and current.secret_sha256 == token.secret_sha256
            and not current.expired(self.now_ns())
        )

    def parsed(self, record: ACLPolicyRecord) -> Policy:
        """A stored policy's parsed rules (Nomad re-parses non-strictly when reading)."""
        cached = self._parsed.get(record.name)
        if cached is not None and cached[0] == record.modify_index:
            return cached[1]
        policy = parse_policy(record.rules, strict=False)
        self._parsed[record.name] = (record.modify_index, policy)
        return policy

    def acl_for(self, names: Iterable[str]) -> ACL:
        """Compile the named policies that exist (missing names grant nothing, as on Nomad)."""
        records = [r for r in (self.state.policies.get(n) for n in dict.fromkeys(names)) if r is not None]
        key = tuple((r.name, r.modify_index) for r in records)
        acl = self._compiled.get(key)
        if acl is None:
            if len(self._compiled) >= _MAX_CACHED_ACLS:
                self._compiled.clear()
            acl = self._compiled[key] = ACL.from_policies(self.parsed(r) for r in records)
        return acl
