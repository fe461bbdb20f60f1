"""Fixtures of the API tests: a real SQLite store in tmp_path, the app built by the
composition root, and the principals of SECURITY §5 (entities A and B, a revoked and an
expired token, an analyst, a coordinator, an admin; "no auth" is simply no header)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cases.services.identity import Identity, Role
from cases.store import Store, open_store
from pukara.core.config import Settings, load_settings
from pukara.core.schema import Entity
from pukara.server import build_app

PEPPER = "api-test-pepper"
ENTITY_A = "entidad-a"
ENTITY_B = "entidad-b"
ENTITY_C = "entidad-c"


@dataclass
class Principals:
    """Plain-text tokens of the test principals (they exist only in the test's memory)."""

    a: str
    a2: str
    b: str
    revoked: str
    expired: str
    analyst: str
    admin: str
    coordinator: str = ""

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        """The Authorization header of ``token``."""
        return {"Authorization": f"Bearer {token}"}


def make_settings(home: Path, **api: Any) -> Settings:
    """Settings for a test home; generous rate limits unless a test sets its own."""
    limits = {"rate_per_minute": 100_000, "rate_burst": 10_000,
              "failed_auth_per_minute": 10_000, **api}
    return load_settings(home=home, token_pepper=SecretStr(PEPPER), api=limits)


def seed_principals(store: Store) -> Principals:
    """Entities A, B, C and users, with one token per principal."""
    identity = Identity(store, pepper=PEPPER)
    for entity_id, name in ((ENTITY_A, "Entidad A"), (ENTITY_B, "Entidad B"),
                            (ENTITY_C, "Entidad C")):
        identity.add_entity(Entity(id=entity_id, name=name, sector="gobierno"))
    identity.add_user("ana-analyst", Role.ANALYST)
    identity.add_user("adm-admin", Role.ADMIN)
    identity.add_user("coco-coordinator", Role.COORDINATOR)
    revoked = identity.issue_entity_token(ENTITY_C)
    identity.revoke(entity_id=ENTITY_C)
    return Principals(
        a=identity.issue_entity_token(ENTITY_A),
        a2=identity.issue_entity_token(ENTITY_A),
        b=identity.issue_entity_token(ENTITY_B),
        revoked=revoked,
        expired=identity.issue_entity_token(ENTITY_B, ttl=timedelta(seconds=-1)),
        analyst=identity.issue_user_token("ana-analyst"),
        admin=identity.issue_user_token("adm-admin"),
        coordinator=identity.issue_user_token("coco-coordinator"),
    )


@dataclass
class ApiEnv:
    """One test's server side: settings, the seeding store and the tokens."""

    settings: Settings
    store: Store
    tokens: Principals

    def app(self) -> FastAPI:
        """A fresh app from the composition root on this home."""
        return build_app(self.settings)


@pytest.fixture
def api_env(pukara_home: Path) -> Iterator[ApiEnv]:
    """A seeded home with generous limits."""
    settings = make_settings(pukara_home)
    store = open_store(settings)
    env = ApiEnv(settings, store, seed_principals(store))
    yield env
    store.close()


@pytest.fixture
def client(api_env: ApiEnv) -> Iterator[TestClient]:
    """A TestClient on the app of ``api_env``."""
    with TestClient(api_env.app(), raise_server_exceptions=False) as test_client:
        yield test_client


def incident_body(title: str = "Ransomware en servidor de archivos", **extra: Any
                  ) -> dict[str, Any]:
    """A valid minimal submission (constructed)."""
    body: dict[str, Any] = {
        "title": title,
        "classification": "malicious-code/ransomware",
        "detected_at": "2026-11-20T08:15:00Z",
        "description": "Archivos cifrados con extensión .lockbit en \\\\fs01",
        "severity": "high",
        "tlp": "amber",
        "observables": [{"type": "ipv4", "value": "203.0.113.45"},
                        {"type": "domain", "value": "lockbit-payments.example"}],
    }
    body.update(extra)
    return body
