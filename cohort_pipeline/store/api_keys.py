"""Personal API keys: only a SHA-256 of the secret is stored; the secret is shown once, at creation.

A plain (unsalted) hash is enough because the secrets are 256-bit random tokens, not passwords: there is
nothing to brute-force, and a deterministic hash lets ``verify_api_key`` find the key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Row

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.store._base import StoreBase
from cohort_pipeline.store.errors import NotFoundError
from cohort_pipeline.store.records import ApiKeyRecord
from cohort_pipeline.store.schema import UTCDateTime, api_keys, projects

KEY_PREFIX = "phx_"
"""PostHog's prefix for personal API keys, so secret scanners and users recognise them."""
LABEL_MAX_LENGTH = 400
_TOKEN_BYTES = 32


def hash_key(secret: str) -> str:
    """The stored form of a secret: lowercase hex SHA-256."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh secret: ``phx_`` followed by 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def api_key_record(row: Row[Any]) -> ApiKeyRecord:
    """An ``ApiKeyRecord`` (without the hash) from an ``api_keys`` row."""
    return ApiKeyRecord(
        id=row.id,
        project_id=row.project_id,
        label=row.label,
        scopes=tuple(row.scopes or ()),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _checked_scopes(scopes: Iterable[str]) -> list[str]:
    if isinstance(scopes, (str, bytes)):
        raise CohortValidationError("Scopes must be a list of strings.", attr="scopes")
    checked = list(scopes)
    if not all(isinstance(scope, str) and scope for scope in checked):
        raise CohortValidationError("Scopes must be a list of strings.", attr="scopes")
    return list(dict.fromkeys(checked))  # de-duplicated, order kept


_PUBLIC_COLUMNS = [column for column in api_keys.c if column.name != "key_hash"]


class ApiKeysMixin(StoreBase):
    """Creating, verifying, listing and revoking API keys."""

    def create_api_key(self, project_id: int, scopes: Iterable[str], label: str = "") -> tuple[ApiKeyRecord, str]:
        """Create a key for ``project_id``; returns the record and the secret (not retrievable later)."""
        if not isinstance(label, str) or len(label) > LABEL_MAX_LENGTH:
            raise CohortValidationError(
                f"Label must be a string of at most {LABEL_MAX_LENGTH} characters.", attr="label"
            )
        checked_scopes = _checked_scopes(scopes)
        secret = new_secret()
        with self._write() as conn:
            if conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id)).first() is None:
                raise NotFoundError("project", project_id)
            row = conn.execute(
                sa.insert(api_keys)
                .values(
                    project_id=project_id,
                    label=label,
                    key_hash=hash_key(secret),
                    scopes=checked_scopes,
                    created_at=self._now(),
                )
                .returning(*_PUBLIC_COLUMNS)
            ).one()
        return api_key_record(row), secret

    def verify_api_key(self, secret: str) -> ApiKeyRecord | None:
        """The active key whose secret this is, or ``None`` (unknown, revoked, or not a string)."""
        if not isinstance(secret, str) or not secret.startswith(KEY_PREFIX):
            return None
        digest = hash_key(secret)
        with self._read() as conn:
            row = conn.execute(
                sa.select(api_keys).where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
            ).one_or_none()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        return api_key_record(row)

    def list_api_keys(self, project_id: int, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """The project's keys by id (without secrets or hashes)."""
        statement = sa.select(*_PUBLIC_COLUMNS).where(api_keys.c.project_id == project_id).order_by(api_keys.c.id)
        if not include_revoked:
            statement = statement.where(api_keys.c.revoked_at.is_(None))
        with self._read() as conn:
            rows = conn.execute(statement).all()
        return [api_key_record(row) for row in rows]

    def revoke_api_key(self, key_id: int) -> ApiKeyRecord:
        """Revoke a key (idempotent: revoking again keeps the first revocation time)."""
        with self._write() as conn:
            row = conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.id == key_id)
                .values(revoked_at=sa.func.coalesce(api_keys.c.revoked_at, sa.literal(self._now(), UTCDateTime())))
                .returning(*_PUBLIC_COLUMNS)
            ).one_or_none()
        if row is None:
            raise NotFoundError("api key", key_id)
        return api_key_record(row)
