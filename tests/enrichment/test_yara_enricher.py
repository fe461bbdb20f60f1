"""The ``yara`` enricher and the engine factory, with the shipped rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrichment.yara.compiler import default_sources
from enrichment.yara.engines import open_scanner
from enrichment.yara.enricher import ERRORS_KEY, YaraEnricher
from enrichment.yara.scanner import ScanLimits
from pukara.core.errors import ConfigError
from pukara.core.schema import Alert, Attachment
from tests.enrichment.test_yara_scanner import SAMPLES


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("engine", ["yara", "yara-x"])
def test_attachments_get_yara_hits_once(cache: Path, engine: str) -> None:
    scanner, errors, unsupported = open_scanner(default_sources(), cache, engine=engine)
    assert (errors, unsupported) == ((), ())
    eicar = Attachment(filename="eicar.com", data=SAMPLES["eicar.com"])
    shell = Attachment(filename="cmd.php", data=SAMPLES["cmd.php"])
    clean = Attachment(filename="notes.txt", data=SAMPLES["clean.txt"])
    alert = Alert(source="mail", title="constructed", attachments=[eicar, shell, clean])
    enricher = YaraEnricher(scanner)
    enricher.enrich([alert])
    enricher.enrich([alert])
    assert enricher.name == "yara"
    assert [(h.kind, h.observable, h.namespace, h.rule) for h in alert.hits] == [
        ("yara", f"sha256:{eicar.sha256}", "national/pukara/eicar.yar", "PUKARA_EICAR_Test_File"),
        (
            "yara",
            f"sha256:{shell.sha256}",
            "national/yara_rules/webshells__WShell_THOR_Webshells.yar",
            "webshell_php_cmd",
        ),
    ]
    assert alert.hits[0].meta["author"] == "Pukara"


def test_scan_errors_are_kept_on_the_alert(cache: Path) -> None:
    scanner, _, _ = open_scanner(default_sources(), cache, limits=ScanLimits(max_file_bytes=16))
    alert = Alert(
        source="mail",
        title="constructed",
        attachments=[Attachment(filename="eicar.com", data=SAMPLES["eicar.com"])],
    )
    YaraEnricher(scanner).enrich([alert, alert])
    assert alert.hits == []
    assert alert.extra[ERRORS_KEY] == [
        {"attachment": "eicar.com", "error": "too large: 68 bytes > 16"}
    ]


def test_unknown_engine_names_the_known_ones(cache: Path) -> None:
    with pytest.raises(ConfigError, match="unknown YARA engine 'clamav'; known: yara, yara-x"):
        open_scanner(default_sources(), cache, engine="clamav")


def _mail(*names: str) -> Alert:
    return Alert(source="mail", title="constructed",
                 attachments=[Attachment(filename=n, data=SAMPLES[n]) for n in names])


def test_attachments_are_scanned_in_a_child_process(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SECURITY F3: matched in a subprocess with a timeout and a memory cap, never here
    import os

    from enrichment.yara import scanner as scanner_module

    scanner, _, _ = open_scanner(default_sources(), cache)
    forks: list[int] = []
    real_fork = os.fork

    def counted_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counted_fork)
    # this process may run an engine thread left by other tests: the forked path on purpose
    monkeypatch.setattr(scanner_module, "fork_is_safe", lambda: True)
    monkeypatch.setattr(scanner, "scan_bytes", None)  # the in-process path is not taken
    first, second = _mail("eicar.com", "clean.txt"), _mail("cmd.php")
    YaraEnricher(scanner).enrich([first, second])
    assert len(forks) == 1  # one child for the whole batch
    assert [h.rule for h in first.hits] == ["PUKARA_EICAR_Test_File"]
    assert [h.rule for h in second.hits] == ["webshell_php_cmd"]


def test_when_forking_is_unsafe_attachments_go_to_a_forkserver_worker(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # another thread runs (a server's): a worker started by the forkserver loads the rules
    from enrichment.yara import scanner as scanner_module

    scanner, _, _ = open_scanner(default_sources(), cache)
    monkeypatch.setattr(scanner_module, "fork_is_safe", lambda: False)
    monkeypatch.setattr(scanner, "scan_bytes", None)
    alert = _mail("eicar.com", "cmd.php")
    YaraEnricher(scanner).enrich([alert])
    assert [h.rule for h in alert.hits] == ["PUKARA_EICAR_Test_File", "webshell_php_cmd"]


def test_a_payload_child_that_dies_fails_its_payloads_not_this_process(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as when the memory cap or the OOM killer stops it mid-scan (injected: the scan exits)
    import os

    from enrichment.yara import scanner as scanner_module

    parent = os.getpid()

    def dies(*args: object) -> object:
        if os.getpid() != parent:
            os._exit(9)
        raise AssertionError("scanned in this process")

    scanner, _, _ = open_scanner(default_sources(), cache)
    monkeypatch.setattr(scanner_module, "fork_is_safe", lambda: True)  # the forked path
    monkeypatch.setattr(scanner_module, "scan_data", dies)
    alert = _mail("eicar.com", "cmd.php")
    YaraEnricher(scanner).enrich([alert])
    assert alert.hits == []
    assert alert.extra[ERRORS_KEY] == [{"attachment": "eicar.com", "error": "worker crashed"},
                                       {"attachment": "cmd.php", "error": "worker crashed"}]
