"""Issuing, finding, listing and revoking API keys.

A secret is `wk_live_` and 256 random bits, shown once when issued; only its SHA-256 is
stored. A fast hash is enough here, unlike for passwords: slow hashes (bcrypt, argon2) exist to
make guessing low-entropy secrets expensive, and nobody can enumerate 2**256 secrets at any
speed. The fast hash keeps authentication to one indexed lookup per request.
"""

import base64
import hashlib
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from wallet.apikeys import repository
from wallet.apikeys.errors import NoScopes, UnknownApiKey
from wallet.apikeys.models import ApiKey, Scope
from wallet.ids import new_id
from wallet.tenants.models import Tenant
from wallet.tenants.service import create_tenant, tenant_by_name

SECRET_PREFIX = "wk_live_"  # noqa: S105 - the prefix of every key, not a secret
_SECRET_BYTES = 32
_SECRET = re.compile(re.escape(SECRET_PREFIX) + r"[a-z2-7]{52}")


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its secret, which exists only here: the database keeps its hash."""

    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_well_formed(secret: str) -> bool:
    """Whether `secret` looks like a key this service issues (checked before any lookup)."""
    return _SECRET.fullmatch(secret) is not None


def create_key(
    session: Session, tenant_id: str, scopes: Collection[Scope], label: str | None = None
) -> IssuedKey:
    if not scopes:
        raise NoScopes("name at least one of: " + ", ".join(Scope))
    random_part = base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode()
    secret = SECRET_PREFIX + random_part.rstrip("=").lower()
    key = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        secret_hash=hash_secret(secret),
        scopes=sorted(Scope(scope).value for scope in set(scopes)),
        label=label,
    )
    session.add(key)
    session.flush()
    return IssuedKey(key, secret)


def create_key_for_tenant(
    session: Session, tenant_name: str, scopes: Collection[Scope], label: str | None = None
) -> tuple[Tenant, IssuedKey]:
    """A new key for the tenant called `tenant_name`, creating the tenant on first use."""
    tenant = tenant_by_name(session, tenant_name) or create_tenant(session, tenant_name)
    return tenant, create_key(session, tenant.id, scopes, label)


@dataclass(frozen=True)
class ActiveKey:
    """What a request needs to know of the key it came with."""

    id: str
    tenant_id: str
    scopes: frozenset[Scope]


# Stored scope names to scopes, without the enum's lookup machinery on every request.
_SCOPES = {scope.value: scope for scope in Scope}


def find_active_keys(
    connection: psycopg.Connection[Any], secrets: Sequence[str]
) -> list[ActiveKey | None]:
    """The unrevoked key whose secret each one is, if any."""
    hashes = [hash_secret(secret) for secret in secrets]
    found = {
        secret_hash: ActiveKey(key_id, tenant_id, frozenset(_SCOPES[scope] for scope in scopes))
        for secret_hash, key_id, tenant_id, scopes in repository.active_keys(connection, hashes)
    }
    return [found.get(secret_hash) for secret_hash in hashes]


def list_keys(session: Session, tenant_id: str | None = None) -> Sequence[ApiKey]:
    """Every key, or one tenant's, oldest first; revoked keys included."""
    return repository.keys(session, tenant_id)


def revoke_key(session: Session, key_id: str) -> ApiKey:
    """Revoke a key from now on; revoking a revoked key keeps its first revocation time."""
    key = repository.lock_key(session, key_id)
    if key is None:
        raise UnknownApiKey(f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = repository.transaction_time(session)
        session.flush()
    return key
