"""Shared fixtures: where the real samples live, and a throw-away PUKARA_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: the real public samples (see its MANIFEST.md)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real samples not found at {SHARED_DATA}: clone with ../shared beside it")
    return SHARED_DATA


@pytest.fixture
def pukara_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PUKARA_HOME for one test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PUKARA_HOME", str(home))
    return home
