"""``pukara scan`` in-process: JSON contract, default rules, --rules, --engine, refusals."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yara

from pukara.cli import main
from tests.enrichment.test_yara_scanner import EXPECTED, SAMPLES


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One PUKARA_HOME for the module, so the compiled-rules cache is shared between tests."""
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUKARA_HOME", str(path))
        yield path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    for name, data in SAMPLES.items():
        target = folder / "sub" / name if name.endswith(".php") else folder / name
        target.write_bytes(data)
    return folder


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object, str]:
    code = main(["scan", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def summary(document: object) -> dict[str, list[tuple[str, str]]]:
    return {
        Path(entry["path"]).name: sorted((m["namespace"], m["rule"]) for m in entry["matches"])
        for entry in document  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize("engine", ["yara", "yara-x"])
def test_scan_folder_with_the_shipped_rules(
    home: Path, corpus: Path, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    code, document, err = run_json(capsys, str(corpus), "--engine", engine)
    assert code == 0
    assert err == ""
    assert summary(document) == EXPECTED
    entry = next(e for e in document if e["path"].endswith("eicar.com"))  # type: ignore[attr-defined]
    assert set(entry) == {"path", "matches"}
    assert set(entry["matches"][0]) == {"rule", "namespace", "tags", "meta", "strings"}
    assert entry["matches"][0]["strings"][0]["identifier"] == "$eicar"
    assert any((home / "cache" / "yara").iterdir())


def test_rules_option_broken_file_reported_and_the_rest_scanned(
    home: Path,
    corpus: Path,
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules = tmp_path / "entity-rules"
    rules.mkdir()
    (rules / "broken.yar").write_text('rule broken {\n  strings: $a = "x"\n  condition: $b\n}\n')
    shutil.copy(shared_data / "yara" / "webshell_regeorg.yar", rules)
    code, document, err = run_json(capsys, str(corpus), "--rules", str(rules))
    assert code == 0
    assert f'{rules / "broken.yar"}:4: undefined string "$b"' in err.replace("\n", "")
    assert summary(document) == {
        "tunnel.aspx": [("entity-rules/webshell_regeorg.yar", "REGEORG_Tuneller_generic")],
        "shell.aspx": [],
        "cmd.php": [],
        "eicar.com": [],
        "clean.txt": [],
    }


def test_compiled_rules_are_refused(
    home: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled = tmp_path / "mine.yarc"
    yara.compile(source="rule evil { condition: true }").save(str(compiled))
    code = main(["scan", str(corpus), "--rules", str(compiled), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "compiled rules are refused" in err


def test_missing_path_is_an_error_but_the_rest_is_scanned(
    home: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document, err = run_json(capsys, str(corpus / "eicar.com"), str(corpus / "nope"))
    assert code == 1
    assert document == [
        {
            "path": str(corpus / "eicar.com"),
            "matches": document[0]["matches"],  # type: ignore[index]
        },
        {"path": str(corpus / "nope"), "matches": [], "error": "not found"},
    ]
    assert summary(document)["eicar.com"] == EXPECTED["eicar.com"]
    assert f"{corpus / 'nope'}: no such file or folder" in err.replace("\n", "")


def test_table_output_escapes_untrusted_names(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "[bold]x\x1b[31m.com"
    path.write_bytes(SAMPLES["eicar.com"])
    assert main(["scan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b[31m" not in out
    assert "PUKARA_EICAR_Test_Fi" in out  # the table may shorten the cell


def test_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["scan", "--timeout", "0", "."])
    assert exited.value.code == 2
    assert "expected a whole number of at least 1, got '0'" in capsys.readouterr().err
