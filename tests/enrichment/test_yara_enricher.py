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
