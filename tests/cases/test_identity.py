"""Entities, users and tokens: random, hashed, shown once, revocable, expiring."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cases.services import audit
from cases.services.identity import Identity, Role
from cases.store.engine import Store, make_engine
from cases.store.tables import audit_log, tokens
from pukara.core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from pukara.core.schema import Entity


@pytest.fixture
def identity(tmp_path: Path) -> Identity:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), home=tmp_path).open()
    ident = Identity(store, pepper="test-pepper")
    ident.add_entity(Entity(id="minsa", name="Ministerio de Salud", sector="Health",
                            cidrs=["190.1.0.0/16"], domains=["MINSA.gob.pe."]))
    ident.add_entity(Entity(id="onpe", name="ONPE", sector="government"))
    return ident


def test_entity_values_are_normalised_and_duplicates_refused(identity: Identity) -> None:
    entity = identity.entity("minsa")
    assert entity.sector == "health"
    assert entity.domains == ["minsa.gob.pe"]
    with pytest.raises(Conflict, match="minsa"):
        identity.add_entity(Entity(id="minsa", name="x", sector="health"))
    with pytest.raises(NotFound):
        identity.entity("nope")


def test_token_is_random_hashed_and_authenticates_its_entity(identity: Identity) -> None:
    first = identity.issue_entity_token("minsa")
    second = identity.issue_entity_token("minsa")
    assert first != second and first.startswith("pk_") and len(first) == 46
    principal = identity.authenticate(first)
    assert principal.entity_id == "minsa" and principal.role is Role.REPORTER
    with identity.store.read() as conn:
        stored = conn.execute(select(tokens.c.hash, tokens.c.prefix)).all()
    assert all(first not in row.hash and second not in row.hash for row in stored)
    assert {row.prefix for row in stored} == {first[3:7], second[3:7]}


@pytest.mark.parametrize(
    "candidate",
    ["", "Bearer", "pk_", "x" * 10_000, None, 12, ["pk_x"], "minsa", "pk_\x00" + "a" * 40],
)
def test_malformed_tokens_fail_the_same_way(identity: Identity, candidate: object) -> None:
    with pytest.raises(AuthenticationFailed, match=r"^invalid or missing bearer token$"):
        identity.authenticate(candidate)


def test_prefix_or_stored_hash_is_not_a_token(identity: Identity) -> None:
    token = identity.issue_entity_token("minsa")
    with identity.store.read() as conn:
        stored_hash = conn.execute(select(tokens.c.hash)).scalar_one()
    for guess in (token[:8], stored_hash, "pk_" + stored_hash, token + "x", token[:-1]):
        with pytest.raises(AuthenticationFailed):
            identity.authenticate(guess)


def test_revoked_and_expired_tokens_fail_and_revocation_is_audited(identity: Identity) -> None:
    token = identity.issue_entity_token("minsa")
    other = identity.issue_entity_token("onpe")
    assert identity.revoke(entity_id="minsa") == 1
    with pytest.raises(AuthenticationFailed):
        identity.authenticate(token)
    assert identity.authenticate(other).entity_id == "onpe"
    expired = identity.issue_entity_token("onpe", ttl=timedelta(seconds=-1))
    with pytest.raises(AuthenticationFailed):
        identity.authenticate(expired)
    with identity.store.read() as conn:
        actions = list(conn.execute(select(audit_log.c.action)).scalars())
        assert audit.verify(conn) == len(actions)
    assert actions.count("token.revoke") == 1
    assert actions.count("token.create") == 3


def test_users_have_staff_roles_only(identity: Identity) -> None:
    identity.add_user("ana", Role.ANALYST)
    principal = identity.authenticate(identity.issue_user_token("ana"))
    assert principal.user == "ana" and principal.is_staff and principal.entity_id is None
    with pytest.raises(InvalidInput, match="role"):
        identity.add_user("eve", Role.REPORTER)
    with pytest.raises(NotFound):
        identity.issue_user_token("nobody")
    assert [u["name"] for u in identity.users()] == ["ana"]
