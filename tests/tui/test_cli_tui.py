"""``pukara tui`` argument handling (the app itself is covered by the Pilot tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pukara.cli import build_parser, main
from pukara.cli.tui import make_client
from tui.client.local import LocalClient
from tui.client.remote import RemoteClient


def test_token_without_server_is_refused(pukara_home: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tui", "--token", "abc"]) == 1
    assert "--token is only used with --server" in capsys.readouterr().err


def test_server_without_token_is_refused(pukara_home: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PUKARA_TOKEN", raising=False)
    assert main(["tui", "--server", "https://pukara.example"]) == 1
    assert "--server needs --token" in capsys.readouterr().err


def test_clients_chosen_by_arguments(pukara_home: Path) -> None:
    parser = build_parser()
    remote = make_client(parser.parse_args(["tui", "--server", "https://x.example",
                                            "--token", "t"]))
    local = make_client(parser.parse_args(["tui"]))
    try:
        assert isinstance(remote, RemoteClient) and isinstance(local, LocalClient)
        assert remote.base_url == "https://x.example"
    finally:
        remote.close()
        local.close()
