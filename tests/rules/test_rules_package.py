"""The shipped rule set: every file documented, unchanged from its origin, and compiling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yara

from enrichment.yara.compiler import EMPTY_EXTERNALS
from rules import rules_dir

ROOT = rules_dir()
#: shipped folder -> folder of the shared samples it was copied from (see MANIFEST.md)
ORIGIN_FOLDER = {
    "signature_base": "",
    "yara_rules": "yara-rules",
    "reversinglabs": "reversinglabs",
    "elastic": "elastic",
    "eset": "eset",
}
LICENCE_BY_FOLDER = {
    "signature_base": "Detection Rule License 1.1 (signature-base)",
    "yara_rules": "GPL-2.0 (Yara-Rules/rules)",
    "reversinglabs": "MIT (ReversingLabs)",
    "elastic": "Elastic License 2.0 (Elastic protections-artifacts)",
    "eset": "BSD-2-Clause (ESET malware-ioc)",
    "pukara": "MIT",
}
ROW = re.compile(
    r"^\| `(?P<file>[^`]+\.yar)` \| (?P<repo>[^|]+) \| (?P<commit>[^|]+) \| .*"
    r" \| (?P<licence>[^|]+) \| (?P<rules>\d+) \|$"
)


def shipped() -> list[Path]:
    return sorted(ROOT.rglob("*.yar"))


def readme_rows() -> dict[str, dict[str, str]]:
    text = (ROOT / "README.md").read_text()
    return {m["file"]: m.groupdict() for m in map(ROW.match, text.splitlines()) if m}


def test_rules_dir_is_the_package_folder() -> None:
    assert Path(__file__).resolve().parents[2] / "rules" == ROOT
    assert (ROOT / "pukara" / "eicar.yar").is_file()


def test_counts_size_and_folders() -> None:
    files = shipped()
    assert len(files) == 222
    assert {f.parent.name for f in files} == set(LICENCE_BY_FOLDER)
    assert sum(f.stat().st_size for f in ROOT.rglob("*")) < 1_500_000


def test_every_file_is_listed_in_the_readme_with_its_licence_and_rule_count() -> None:
    rows = readme_rows()
    assert sorted(rows) == sorted(f.relative_to(ROOT).as_posix() for f in shipped())
    total = 0
    for name, row in rows.items():
        assert row["licence"].strip() == LICENCE_BY_FOLDER[name.split("/")[0]], name
        path = str(ROOT / name)
        compiled = yara.compile(filepath=path, externals=EMPTY_EXTERNALS, includes=False)
        assert sum(1 for _ in compiled) == int(row["rules"]), name
        total += int(row["rules"])
    assert total == 1421


def test_published_files_are_byte_identical_to_their_origin(shared_data: Path) -> None:
    for path in shipped():
        folder = path.parent.name
        if folder == "pukara":
            continue
        origin_dir = shared_data / "yara" / ORIGIN_FOLDER[folder]
        candidates = [origin_dir / path.name, origin_dir / (path.stem + ".yara")]
        origin = next(c for c in candidates if c.is_file())
        assert path.read_bytes() == origin.read_bytes(), path


def test_elastic_rules_keep_their_licence_notice() -> None:
    for path in sorted((ROOT / "elastic").glob("*.yar")):
        assert 'license = "Elastic License v2"' in path.read_text(), path
    assert "Elastic License 2.0" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    "excluded",
    [
        "packers__packer.yar",
        "malware__MALW_AZORULT.yar",
        "deprecated__Android__Android_BadMirror.yar",
    ],
)
def test_noisy_and_broken_files_are_left_out_and_say_why(excluded: str) -> None:
    assert not (ROOT / "yara_rules" / excluded).exists()
    assert f"`yara-rules/{excluded}`" in (ROOT / "README.md").read_text()


def test_eicar_rule_matches_the_eicar_string_and_nothing_else() -> None:
    rules = yara.compile(filepath=str(ROOT / "pukara" / "eicar.yar"))
    eicar = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    assert [m.rule for m in rules.match(data=eicar)] == ["PUKARA_EICAR_Test_File"]
    assert rules.match(data=eicar[:-1]) == []
