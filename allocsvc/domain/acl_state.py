"""The pure fold of ACL events: policies, tokens (by accessor and by secret digest), bootstrap.

Owns ``ACLState`` and its records. ``ClusterState.apply`` routes every ``acl/…`` record here, so
replaying the log rebuilds exactly the live ACL state. Policy rules are kept as validated text;
``allocsvc.views.acl_resolver`` parses them (the policy engine lives in ``allocsvc.acl``, a sibling
layer the domain does not import). Pure: no trio, no I/O.
"""

from __future__ import annotations

import hashlib

import msgspec

from allocsvc.domain import acl_events as acl_ev
from allocsvc.domain.events import Recorded

MANAGEMENT = "management"
CLIENT = "client"


class ACLPolicyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One stored policy (Nomad ``structs.ACLPolicy`` without RulesJSON, which is derived)."""

    name: str
    description: str
    rules: str
    hash: bytes
    create_index: int
    modify_index: int


class ACLTokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One stored token; the SecretID exists only as its SHA-256 digest."""

    accessor_id: str
    secret_sha256: str
    name: str
    type: str
    policies: tuple[str, ...] | None
    global_: bool
    hash: bytes
    create_time: int
    expiration_time: int
    expiration_ttl: int
    create_index: int
    modify_index: int

    @property
    def is_management(self) -> bool:
        """Management tokens are allowed everything."""
        return self.type == MANAGEMENT

    def expired(self, now_ns: int) -> bool:
        """Nomad ``IsExpired``: an expiration time strictly before ``now``."""
        return self.expiration_time != 0 and self.expiration_time < now_ns


def policy_hash(name: str, description: str, rules: str) -> bytes:
    """Nomad ``ACLPolicy.SetHash``: BLAKE2b-256 over name, description and rules."""
    h = hashlib.blake2b(digest_size=32)
    for part in (name, description, rules):
        h.update(part.encode())
    return h.digest()


def token_hash(name: str, type_: str, policies: tuple[str, ...] | None, global_: bool) -> bytes:
    """Nomad ``ACLToken.SetHash``: BLAKE2b-256 over name, type, policies and locality."""
    h = hashlib.blake2b(digest_size=32)
    h.update(name.encode())
    h.update(type_.encode())
    for policy in policies or ():
        h.update(policy.encode())
    h.update(b"global" if global_ else b"local")
    return h.digest()


class ACLState:
    """Everything the ``acl/…`` streams say, folded in index order."""

    def __init__(self) -> None:
        self.policies: dict[str, ACLPolicyRecord] = {}
        self.tokens: dict[str, ACLTokenRecord] = {}
        self._by_secret: dict[str, str] = {}
        #: Index of the last bootstrap (Nomad's reset index); 0 until bootstrapped.
        self.bootstrap_index = 0
        #: Nomad's ``acl_policy`` / ``acl_token`` table indexes.
        self.policy_index = 0
        self.token_index = 0

    def apply(self, recorded: Recorded) -> None:
        """Fold one committed ACL record (any other event type is ignored)."""
        index = recorded.index
        match recorded.event:
            case acl_ev.ACLBootstrapped(token=t):
                self.bootstrap_index = index
                self._upsert_token(t, index)
            case acl_ev.ACLPolicyUpserted(name=name, description=description, rules=rules):
                old = self.policies.get(name)
                self.policies[name] = ACLPolicyRecord(
                    name=name,
                    description=description,
                    rules=rules,
                    hash=policy_hash(name, description, rules),
                    create_index=old.create_index if old is not None else index,
                    modify_index=index,
                )
                self.policy_index = index
            case acl_ev.ACLPolicyDeleted(name=name):
                self.policies.pop(name, None)
                self.policy_index = index
            case acl_ev.ACLTokenUpserted(token=t):
                self._upsert_token(t, index)
            case acl_ev.ACLTokenDeleted(accessor_id=accessor_id):
                gone = self.tokens.pop(accessor_id, None)
                if gone is not None and self._by_secret.get(gone.secret_sha256) == accessor_id:
                    del self._by_secret[gone.secret_sha256]
                self.token_index = index
            case _:
                pass

    def _upsert_token(self, t: acl_ev.LoggedToken, index: int) -> None:
        old = self.tokens.get(t.accessor_id)
        if old is not None and self._by_secret.get(old.secret_sha256) == t.accessor_id:
            del self._by_secret[old.secret_sha256]
        self.tokens[t.accessor_id] = ACLTokenRecord(
            accessor_id=t.accessor_id,
            secret_sha256=t.secret_sha256,
            name=t.name,
            type=t.type,
            policies=t.policies,
            global_=t.global_,
            hash=token_hash(t.name, t.type, t.policies, t.global_),
            create_time=t.create_time,
            expiration_time=t.expiration_time,
            expiration_ttl=t.expiration_ttl,
            create_index=old.create_index if old is not None else index,
            modify_index=index,
        )
        self._by_secret[t.secret_sha256] = t.accessor_id
        self.token_index = index

    def token_by_secret(self, secret_id: str) -> ACLTokenRecord | None:
        """The token whose SecretID is ``secret_id`` (looked up by digest)."""
        accessor = self._by_secret.get(acl_ev.secret_digest(secret_id))
        return None if accessor is None else self.tokens.get(accessor)

    def secret_in_use(self, secret_sha256: str) -> bool:
        """Whether some token already has this secret digest."""
        return secret_sha256 in self._by_secret

    def next_expiry_after(self, now_ns: int) -> int | None:
        """The earliest expiration time later than ``now_ns`` (None if no token expires later)."""
        later = [t.expiration_time for t in self.tokens.values() if t.expiration_time > now_ns]
        return min(later) if later else None
