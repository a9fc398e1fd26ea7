"""ACL events: bootstrap, policies and tokens, as frozen tagged Structs in the shared log.

Owns the ACL event vocabulary and the ``acl/…`` stream names. A token's SecretID is **never**
logged: events carry its SHA-256 (``secret_sha256``) next to the public AccessorID, so a log
export cannot be replayed into working credentials (design/event-log.md, ``## ACL events``).
Written by ``allocsvc.actors.acl``; folded by ``allocsvc.domain.acl_state``. Pure: no trio, no I/O.
"""

from __future__ import annotations

import hashlib

import msgspec

from allocsvc.domain.events import Event

ACL_STREAM_PREFIX = "acl/"
BOOTSTRAP_STREAM = "acl/bootstrap"


def policy_stream(name: str) -> str:
    """The stream of one policy's events."""
    return f"acl/policy/{name}"


def token_stream(accessor_id: str) -> str:
    """The stream of one token's events."""
    return f"acl/token/{accessor_id}"


def secret_digest(secret_id: str) -> str:
    """The hex SHA-256 of a SecretID: the only form of a secret the log (and memory) keeps."""
    return hashlib.sha256(secret_id.encode()).hexdigest()


class LoggedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token as logged: everything Nomad stores except the clear SecretID.

    Times are Unix nanoseconds; ``expiration_time`` 0 means the token never expires.
    ``policies`` is None for a management token (Nomad's nil slice).
    """

    accessor_id: str
    secret_sha256: str
    name: str = ""
    type: str = "client"
    policies: tuple[str, ...] | None = None
    global_: bool = msgspec.field(default=False, name="global")
    create_time: int = 0
    expiration_time: int = 0
    expiration_ttl: int = 0


class ACLBootstrapped(Event, frozen=True, kw_only=True):
    """The ACL system was bootstrapped (``POST /v1/acl/bootstrap``) and its management token created.

    One record, as in Nomad's single Raft write: its index is both the token's CreateIndex and the
    bootstrap reset index.
    """

    token: LoggedToken


class ACLPolicyUpserted(Event, frozen=True, kw_only=True):
    """A policy was created or replaced (``PUT /v1/acl/policy/:name``); ``rules`` passed validation."""

    name: str
    description: str = ""
    rules: str = ""


class ACLPolicyDeleted(Event, frozen=True, kw_only=True):
    """A policy was deleted (``DELETE /v1/acl/policy/:name``); deleting a missing one is a no-op write."""

    name: str


class ACLTokenUpserted(Event, frozen=True, kw_only=True):
    """A token was created or updated (bootstrap, ``POST /v1/acl/token[/:accessor]``)."""

    token: LoggedToken


class ACLTokenDeleted(Event, frozen=True, kw_only=True):
    """A token was deleted (``DELETE /v1/acl/token/:accessor``); its secret stops working at once."""

    accessor_id: str


ACLEvent = ACLBootstrapped | ACLPolicyUpserted | ACLPolicyDeleted | ACLTokenUpserted | ACLTokenDeleted
