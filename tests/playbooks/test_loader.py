"""Playbook validation: every problem refused with file, line, field and why — through the
loader and through ``pukara playbook validate``. The YAML documents here are constructed."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbooks.actions import ACTION_MODULES, action_names, get_action, registered
from playbooks.loader import LIBRARY, PlaybookInvalid, find_cycle, library, load_file, load_text
from pukara.cli import main
from pukara.core.errors import PluginNotFound

HEAD = "id: t\ntitle: T\nversion: 1\nsteps:\n"


def errors_of(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(PlaybookInvalid) as caught:
        load_text(text, "pb.yaml")
    return [(e.line, e.field, e.message) for e in caught.value.errors]


def test_unknown_action_named_with_its_line() -> None:
    text = HEAD + ("  - id: a\n    name: A\n    phase: containment\n"
                   "    action:\n      name: notify-everyone\n")
    [(line, field, message)] = errors_of(text)
    assert (line, field) == (9, "steps.0.action.name")
    assert message.startswith("unknown action 'notify-everyone'; known: add-tag, export-misp")


def test_cycle_in_needs() -> None:
    text = HEAD + (
        "  - id: a\n    name: A\n    phase: containment\n    needs: [c]\n"
        "    task: {title: x}\n"
        "  - id: b\n    name: B\n    phase: containment\n    needs: [a]\n"
        "    task: {title: y}\n"
        "  - id: c\n    name: C\n    phase: recovery\n    needs: [b]\n"
        "    task: {title: z}\n")
    assert errors_of(text) == [(8, "steps.0.needs", "cycle in needs: a -> c -> b -> a")]


def test_bad_condition_gives_the_column() -> None:
    text = HEAD + ("  - id: d\n    name: D\n    phase: containment\n    decision:\n"
                   "      if: case.severity >= high and case.colour == 'red'\n"
                   "      then: []\n")
    [(line, field, message)] = errors_of(text)
    assert (line, field) == (9, "steps.0.decision.if")
    assert message.startswith("bad condition at column 27: unknown case field 'colour'")


def test_unclosed_condition() -> None:
    text = HEAD + ("  - id: d\n    name: D\n    phase: containment\n    decision:\n"
                   "      if: ('ransomware' in case.tags\n")
    [(_, _, message)] = errors_of(text)
    assert message == "bad condition at column 27: expected ')', found the end"


def test_missing_fields_unknown_fields_duplicates_and_unknown_needs() -> None:
    text = HEAD + (
        "  - id: a\n    phase: containment\n    task: {title: x}\n"
        "  - id: b\n    name: B\n    phase: containment\n    colour: red\n"
        "    task: {title: y}\n")
    assert errors_of(text) == [(5, "steps.0.name", "missing field 'name'"),
                               (11, "steps.1.colour", "unknown field 'colour'")]
    text = HEAD + (
        "  - id: a\n    name: A\n    phase: containment\n    task: {title: x}\n"
        "  - id: a\n    name: A2\n    phase: recovery\n    needs: [ghost]\n"
        "    task: {title: y}\n")
    assert errors_of(text) == [
        (9, "steps.1.id", "duplicate step id 'a' (first at step 0)"),
        (12, "steps.1.needs.0", "step 'a' needs unknown step 'ghost'")]


def test_two_kinds_in_one_step_and_bad_offsets() -> None:
    text = HEAD + ("  - id: a\n    name: A\n    phase: containment\n"
                   "    task: {title: x, due: soon}\n"
                   "    approval: {prompt: ok}\n")
    found = errors_of(text)
    assert (8, "steps.0.task.due", "'soon' is not an offset like 30m, 4h, 3d or 1w") in found
    text = HEAD + ("  - id: a\n    name: A\n    phase: containment\n"
                   "    task: {title: x}\n    approval: {prompt: ok}\n")
    assert errors_of(text) == [
        (5, "steps.0", "a step has exactly one of task, action, approval, decision; "
                       "found task, approval")]


def test_branch_target_must_need_its_decision() -> None:
    text = HEAD + ("  - id: d\n    name: D\n    phase: containment\n    decision:\n"
                   "      if: case.alerts > 2\n      then: [x]\n      else: [nowhere]\n"
                   "  - id: x\n    name: X\n    phase: containment\n    task: {title: x}\n")
    assert errors_of(text) == [
        (10, "steps.0.decision.then.0", "branch target 'x' must list 'd' in its needs"),
        (11, "steps.0.decision.else.0", "branch names unknown step 'nowhere'")]


def test_yaml_syntax_error_is_located() -> None:
    assert errors_of(HEAD + "  - id: [a\n") == [
        (6, "", "YAML: expected ',' or ']', but got '<stream end>'")]


def test_library_is_valid_and_complete() -> None:
    found = library()
    assert sorted(found) == ["compromised-account", "ddos", "malware-infection",
                             "personal-data-breach", "phishing", "ransomware",
                             "vulnerability-exploitation", "web-defacement"]
    for playbook in found.values():
        kinds = {step.kind for step in playbook.steps}
        assert {"approval", "decision"} & kinds, playbook.id
        assert "NIST SP 800-61" in playbook.description or "NIST" in playbook.description
        assert playbook.references


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": []}) == []
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c"]


def test_registry_matches_the_static_name_map() -> None:
    assert sorted(registered()) == sorted(ACTION_MODULES) == action_names()
    assert len(action_names()) == 9
    with pytest.raises(PluginNotFound, match="unknown action 'nope'; known: add-tag"):
        get_action("nope")


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      pukara_home: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "  - id: a\n    name: A\n    phase: containment\n"
                          "    needs: [a]\n    action: {name: launch-missiles}\n")
    assert main(["playbook", "validate", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}:9: unknown action 'launch-missiles'")
    assert err[1] == f"{bad}:8: step 'a' needs itself (steps.0.needs)"
    assert main(["playbook", "validate", *map(str, sorted(LIBRARY.glob("*.yaml")))]) == 0
    assert capsys.readouterr().out.count(": ok\n") == 8


def test_load_file_refuses_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"id: t\ntitle: \xe9\n")
    with pytest.raises(PlaybookInvalid, match="not UTF-8"):
        load_file(path)


def test_action_arguments_checked_against_the_action() -> None:
    text = HEAD + ("  - id: a\n    name: A\n    phase: containment\n    action:\n"
                   "      name: set-severity\n      with: {levl: high}\n")
    assert errors_of(text) == [
        (10, "steps.0.action.with",
         "action 'set-severity' takes no argument 'levl'; it takes level, only_raise"),
        (10, "steps.0.action.with", "action 'set-severity' needs argument 'level'")]


def test_unknown_input_reference_is_located() -> None:
    text = ("id: t\ntitle: T\nversion: 1\ninputs:\n  - {name: label, default: x}\nsteps:\n"
            "  - id: a\n    name: A\n    phase: containment\n    action:\n"
            "      name: add-tag\n      with: {tag: '${inputs.lable}'}\n")
    assert errors_of(text) == [
        (12, "steps.0.action.with", "unknown input 'lable' in ${inputs.lable}")]
