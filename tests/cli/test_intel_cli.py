"""``pukara intel load|stats|match|sync`` against a throw-away PUKARA_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pukara.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_load_stats_match(pukara_home: Path, shared_data: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "intel", "load",
                       str(shared_data / "misp/eset/glupteba__glupteba.misp-event.json"),
                       str(shared_data / "stix/apt1.json"),
                       str(shared_data / "warninglists/public-dns-v4.json"), "--json")
    assert code == 0
    loaded = json.loads(out)
    assert (loaded["loaded"], loaded["rejected"]) == (325 + 10 + 62745, 2)
    assert [f["kind"] for f in loaded["files"]] == ["misp-event", "stix", "warninglist"]
    assert loaded["errors"][0] == {
        "source": str(shared_data / "stix/apt1.json"), "line": 21,
        "error": "pattern not a simple comparison"}

    code, out, _ = run(capsys, "intel", "stats", "--json")
    stats = json.loads(out)
    assert code == 0 and stats["indicators"] == 335
    assert stats["by_source"] == {"misp-file:glupteba__glupteba.misp-event.json": 325,
                                  "stix:apt1.json": 10}

    code, out, _ = run(capsys, "intel", "match", "5.101.6.132", "--json")
    assert code == 0
    assert json.loads(out) == {"value": "5.101.6.132", "hits": [{
        "indicator": "5.101.6.132", "type": "ipv4",
        "event_uuid": "5aa2e21b-79d8-4fd7-b15d-34670a016219",
        "event_info": "Glupteba.AY research related IoCs",
        "source": "misp-file:glupteba__glupteba.misp-event.json", "suppressed": False}]}

    code, out, _ = run(capsys, "intel", "match", "hxxp://www.hugesoft[.]org/x", "--json")
    document = json.loads(out)
    assert document["value"] == "http://www.hugesoft.org/x"
    assert [(h["indicator"], h["type"]) for h in document["hits"]] == [("hugesoft.org", "domain")]


def test_suppressed_hit_in_json(pukara_home: Path, shared_data: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    constructed = tmp_path / "constructed.txt"  # a constructed list naming a public resolver
    constructed.write_text("8.8.8.8\n")
    run(capsys, "intel", "load", str(constructed),
        str(shared_data / "warninglists/public-dns-v4.json"), "--json")
    code, out, _ = run(capsys, "intel", "match", "8.8.8.8", "--json")
    assert code == 0
    (hit,) = json.loads(out)["hits"]
    assert (hit["indicator"], hit["source"], hit["suppressed"]) == (
        "8.8.8.8", "list:constructed.txt", True)


def test_errors_go_to_stderr_with_non_zero_exit(pukara_home: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "intel", "load", str(tmp_path / "missing.csv"), "--json")
    assert code == 1
    assert json.loads(out)["errors"][0]["error"].endswith("missing.csv: no such file or folder")
    code, out, err = run(capsys, "intel", "match", "no such thing", "--json")
    assert code == 1 and out == "" and "cannot tell what" in err
    code, out, err = run(capsys, "intel", "sync", "--json")
    assert code == 2 and out == "" and "no MISP server configured" in err


def test_sync_unreachable_server(pukara_home: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    key = "s3cr3t-key-for-test-0123456789abcdef0123"
    monkeypatch.setenv("PUKARA_MISP_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PUKARA_MISP_KEY", key)
    code, out, err = run(capsys, "intel", "sync", "--json")
    assert code == 1 and out == ""
    assert "unreachable or refused the key" in err and key not in err
