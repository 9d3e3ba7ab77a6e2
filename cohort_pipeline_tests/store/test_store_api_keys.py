"""API keys: stored hashed, shown once, verified in constant time, revocable."""

from __future__ import annotations

import hashlib

import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.store import CohortStore, NotFoundError, ProjectRecord, hash_key
from cohort_pipeline.store.schema import api_keys

from .conftest import FakeClock, rows_of


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_created_key_is_stored_only_as_a_hash(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    record, secret = store.create_api_key(project.id, ["cohort:read", "cohort:write", "cohort:read"], "ci")
    assert secret.startswith("phx_") and len(secret) >= 40
    assert (record.project_id, record.label, record.scopes) == (project.id, "ci", ("cohort:read", "cohort:write"))
    assert (record.created_at, record.revoked_at, record.is_active) == (clock.now, None, True)
    (row,) = rows_of(store, api_keys)
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(value) for value in row}


def test_secrets_are_unique(store: CohortStore, project: ProjectRecord) -> None:
    secrets = {store.create_api_key(project.id, [], "")[1] for _ in range(5)}
    assert len(secrets) == 5


def test_verify_finds_the_key_and_refuses_others(store: CohortStore, project: ProjectRecord) -> None:
    record, secret = store.create_api_key(project.id, ["cohort:read"], "reader")
    assert store.verify_api_key(secret) == record
    assert store.verify_api_key(secret + "x") is None
    assert store.verify_api_key(secret[4:]) is None  # without the prefix
    assert store.verify_api_key("") is None
    assert store.verify_api_key(None) is None  # type: ignore[arg-type]


def test_revoked_keys_stop_verifying(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    record, secret = store.create_api_key(project.id, ["cohort:read"], "temp")
    kept, kept_secret = store.create_api_key(project.id, ["cohort:read"], "kept")
    revoked = store.revoke_api_key(record.id)
    assert (revoked.revoked_at, revoked.is_active) == (clock.now, False)
    assert store.verify_api_key(secret) is None
    assert store.verify_api_key(kept_secret) == kept
    clock.advance(minutes=5)
    assert store.revoke_api_key(record.id).revoked_at == revoked.revoked_at  # idempotent
    assert store.list_api_keys(project.id) == [kept]
    assert [k.id for k in store.list_api_keys(project.id, include_revoked=True)] == [record.id, kept.id]
    with pytest.raises(NotFoundError):
        store.revoke_api_key(999)


def test_keys_belong_to_their_project(store: CohortStore, project: ProjectRecord) -> None:
    other = store.create_project("other")
    _, secret = store.create_api_key(other.id, ["cohort:read"], "theirs")
    assert store.list_api_keys(project.id) == []
    verified = store.verify_api_key(secret)
    assert verified is not None and verified.project_id == other.id
    with pytest.raises(NotFoundError):
        store.create_api_key(999, ["cohort:read"], "orphan")


@pytest.mark.parametrize("scopes", ["cohort:read", [""], [1]])
def test_invalid_scopes_are_refused(store: CohortStore, project: ProjectRecord, scopes: object) -> None:
    with pytest.raises(CohortValidationError):
        store.create_api_key(project.id, scopes, "bad")  # type: ignore[arg-type]
    assert rows_of(store, api_keys) == []
