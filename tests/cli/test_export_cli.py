"""``pukara case export`` on a case built from the real samples (see tests/cases/sharing_kit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2
from pymisp import MISPEvent

from cases.sharing.misp_export import event_uuid
from pukara.cli import main
from tests.cases.sharing_kit import SharedCase, build_case, make_services


@pytest.fixture
def case_home(pukara_home: Path, shared_data: Path) -> SharedCase:
    """The shared case in PUKARA_HOME, store closed again (the CLI opens its own)."""
    built = make_services(pukara_home)
    case = build_case(built, shared_data)
    built.close()
    return case


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_misp_to_file(case_home: SharedCase, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "event.json"
    code, out, _ = run(capsys, "case", "export", case_home.number, "--format", "misp",
                       "--output", str(target), "--json")
    assert code == 0
    summary = json.loads(out)
    assert (summary["format"], summary["output"], summary["pushed"]) == ("misp", str(target),
                                                                         False)
    event = MISPEvent()
    event.load_file(target)
    assert event.uuid == event_uuid(case_home.case_id)
    assert len(event.attributes) == 6


def test_stix_to_stdout_for_a_partner(case_home: SharedCase,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "case", "export", case_home.number, "--format", "stix",
                       "--to", "essalud")
    assert code == 0
    bundle = stix2.parse(out, version="2.1")
    assert sum(1 for o in bundle.objects if o.type == "indicator") == 5


def test_refusal_says_why_on_stderr(case_home: SharedCase,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "case", "export", case_home.number, "--format", "stix",
                         "--to", "bcrp")
    assert code == 1
    assert out == ""
    assert "TLP:AMBER is for the affected entities and their listed partners; bcrp is neither" \
        in " ".join(err.split())


def test_markdown(case_home: SharedCase, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "case", "export", case_home.number, "--format", "markdown")
    assert code == 0
    assert out.splitlines()[0] == "**TLP:AMBER**"
