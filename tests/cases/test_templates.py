"""Case templates: the shipped files are valid, prefill new cases, and a bad file is refused
with every problem located by file and line."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cases.services import audit
from cases.services.templates import TemplateError, TemplateLibrary, parse_template
from pukara.core.errors import NotFound
from pukara.wiring import Services
from tests.cases.case_kit import built

__all__ = ["built"]
ANA = audit.Actor("ana")
SHIPPED = ["data-breach", "ddos", "defacement", "phishing", "ransomware"]


def test_the_shipped_templates_are_valid() -> None:
    library = TemplateLibrary()
    assert library.names() == SHIPPED
    assert library.validate_all() == []
    ransomware = library.get("ransomware")
    assert (ransomware.classification, ransomware.severity.value) == (
        "malicious-code/infected-system", "critical")
    assert ransomware.techniques == ["T1486", "T1490", "T1078"]
    assert [t.due_hours for t in ransomware.tasks] == [4, 8, 24, 48, 72, 72]
    assert library.get("data-breach").tlp.value == "amber+strict"


def test_a_template_prefills_a_new_case(built: Services) -> None:
    case = built.cases.create({"title": "Hospital Loayza", "template": "ransomware",
                               "entity_ids": ["minsa"]}, ANA)
    assert case["title"] == "Ransomware: Hospital Loayza"
    assert (case["severity"], case["tlp"], case["pap"]) == ("critical", "amber", "amber")
    assert case["tags"] == ["ransomware", "malware"] and case["template"] == "ransomware"
    assert len(case["tasks"]) == 6
    created = datetime.fromisoformat(case["created_at"])
    first_due = datetime.fromisoformat(case["tasks"][0]["due_at"])
    assert abs((first_due - created) - timedelta(hours=4)) < timedelta(seconds=1)


def test_fields_given_explicitly_win_over_the_template(built: Services) -> None:
    case = built.cases.create({"title": "x", "template": "ddos", "severity": "critical",
                               "tlp": "red", "tags": ["bcrp"]}, ANA)
    assert (case["severity"], case["tlp"], case["classification"]) == (
        "critical", "red", "availability/ddos")
    assert case["tags"] == ["ddos", "availability", "bcrp"]


def test_problems_are_located_by_line(tmp_path: Path) -> None:
    text = (
        "name: broken\n"                       # 1
        "classification: fraud/phishing\n"     # 2
        "severity: urgent\n"                   # 3
        "techniques:\n"                        # 4
        "  - T1566\n"                          # 5
        "  - phishing\n"                       # 6
        "tasks:\n"                             # 7
        "  - title: ok\n"                      # 8
        "  - owner: nobody\n"                  # 9
        "colour: red\n"                        # 10
    )
    with pytest.raises(TemplateError) as caught:
        parse_template(text, "broken.yaml")
    located = {(p.field, p.line) for p in caught.value.problems}
    assert located == {("severity", 3), ("techniques.1", 6), ("tasks.1.title", 9),
                       ("colour", 10)}
    assert "broken.yaml:3: severity:" in caught.value.message


def test_yaml_syntax_errors_are_located(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template("name: x\ntasks: [a, b\nseverity: low\n", "bad.yaml")
    [problem] = caught.value.problems
    assert (problem.file, problem.field, problem.line) == ("bad.yaml", "yaml", 3)


def test_file_name_and_template_name_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "worm.yaml"
    path.write_text("name: virus\nclassification: malicious-code/infected-system\n")
    library = TemplateLibrary([tmp_path])
    problems = library.validate_all()
    assert [(p.file, p.line, p.field) for p in problems] == [(str(path), 1, "name")]
    with pytest.raises(NotFound, match=r"no case template 'ransomware' \(available: worm\)"):
        library.get("ransomware")
