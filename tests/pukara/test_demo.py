"""`pukara demo` prepares a home from the demo constituency and the real samples."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pukara.cli import main


def test_demo_prepare_fills_an_empty_home_once(pukara_home: Path, shared_data: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--prepare-only", "--json", "--samples", str(shared_data)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["entities"] == 6
    assert summary["ingested"]["Muntaha-Ghafoor-eve.json"] == 1345
    tokens = Path(summary["tokens_file"])
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    names = [line.split("\t")[0] for line in tokens.read_text().splitlines()]
    assert names[0] == "analyst" and "minsa" in names and len(names) == 7
    assert main(["demo", "--prepare-only", "--json", "--samples", str(shared_data)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["entities"] == 0 and again["ingested"] == {}
    assert main(["alerts", "list", "--json", "--limit", "1000"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(a["title"] == "Nmap SYN Port Scan Detected" for a in listed)
