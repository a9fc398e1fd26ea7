"""Who is calling: resolving the request's ACL token into an authorizer.

Owns the ``Authorizer`` protocol the endpoints check capabilities against, and
``authorizer_for`` which every endpoint calls first. With ACLs disabled every request gets
``ALLOW_ALL``, as on Nomad.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from allocsvc.http.query import HeaderLookup, request_token

if TYPE_CHECKING:
    from allocsvc.service import Service


class Authorizer(Protocol):
    """Capability checks for one caller."""

    accessor_id: str
    is_management: bool

    def allow_namespace_op(self, namespace: str, capability: str) -> bool:
        """Whether the caller holds ``capability`` in ``namespace`` (``*``: in any namespace)."""
        ...

    def allowed_namespaces(self, capability: str, existing: Iterable[str]) -> set[str]:
        """The existing namespaces where the caller holds ``capability``."""
        ...

    def still_valid(self) -> bool:
        """False once the caller's token has expired or been deleted (long-lived operations)."""
        ...


class AllowAll:
    """The authorizer when ACLs are disabled (or for a management token)."""

    accessor_id = "anonymous"
    is_management = True

    def allow_namespace_op(self, namespace: str, capability: str) -> bool:
        return True

    def allowed_namespaces(self, capability: str, existing: Iterable[str]) -> set[str]:
        return set(existing)

    def still_valid(self) -> bool:
        return True


ALLOW_ALL = AllowAll()


def authorizer_for(service: Service, headers: HeaderLookup, token: str | None = None) -> Authorizer:
    """Resolve the caller; raises PermissionDeniedError for a bogus or expired token."""
    if not service.config.acl_enabled:
        return ALLOW_ALL
    secret = request_token(headers) if token is None else token
    return service.acl.resolve(secret)
