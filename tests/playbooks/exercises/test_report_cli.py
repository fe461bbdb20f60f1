"""The CLI contract (``pukara exercise …``), manual scoring, lessons and the report.

``pukara exercise run`` runs in-process through ``pukara.cli.main`` on a constructed scenario
file, with bots, and its JSON is checked against the contract in ARCHITECTURE.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from cases.store.tables import audit_log
from pukara.cli import main
from pukara.wiring import Services

SCENARIO = """\
id: cli-test
title: "CLI <b>test</b> (constructed)"
participants: [{entity: minsa}, {entity: sunat}]
timeline:
  - id: beacon
    at: "T+00:02"
    kind: alert
    args: {template: wazuh, description: "Beacon from {entity}", attacker: 198.18.6.6}
    expectations:
      - {id: report-it, kind: report, points: 10, within_minutes: 20}
      - {id: classify-it, kind: classification, points: 5, within_minutes: 20,
         classification: malicious-code/c2-server}
bots:
  default: {reaction: {distribution: uniform, low: 2, high: 4}}
  entities:
    sunat: {miss_chance: 1.0}
"""


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_reports_located_problems(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCENARIO.replace('at: "T+00:02"', 'at: "soon"'))
    code, out, _ = run_cli(capsys, "exercise", "validate", str(bad), "--json")
    assert code == 1
    assert json.loads(out)["problems"][0].startswith(f"{bad}:6: timeline.0.at:")
    good = tmp_path / "good.yaml"
    good.write_text(SCENARIO)
    code, out, _ = run_cli(capsys, "exercise", "validate", str(good), "--json")
    assert (code, json.loads(out)) == (0, {"valid": True, "id": "cli-test", "injects": 1,
                                           "expectations": 2, "ends_at_minutes": 22.0})


def test_run_score_report_purge(services: Services, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cli.yaml"
    path.write_text(SCENARIO)
    code, out, _ = run_cli(capsys, "exercise", "run", str(path), "--speed", "600",
                           "--bots", "all", "--json")
    assert code == 0
    result = json.loads(out)
    exercise_id = result["exercise_id"]
    assert [(s["entity"], s["points"], s["met"], s["missed"]) for s in result["scores"]] == [
        ("minsa", 15, 2, 0), ("sunat", 0, 0, 2)]

    code, out, _ = run_cli(capsys, "exercise", "score", exercise_id, "--entity", "sunat",
                           "--points", "4", "--comment", "called the hotline instead",
                           "--json")
    board = json.loads(out)
    assert [(s["entity"], s["points"]) for s in board["scores"]] == [("minsa", 15),
                                                                     ("sunat", 4)]
    assert board["sectors"] == [
        {"sector": "finance", "entities": 1, "points": 4, "max_points": 15, "met": 0,
         "missed": 2, "pending": 0},
        {"sector": "health", "entities": 1, "points": 15, "max_points": 15, "met": 2,
         "missed": 0, "pending": 0}]

    html_file = tmp_path / "aar.html"
    code, _, _ = run_cli(capsys, "exercise", "report", exercise_id, "--format", "html",
                         "--output", str(html_file), "--lesson", "Hotline <script>x</script>")
    page = html_file.read_text()
    assert page.count("src='data:image/png;base64,") == 2
    assert "CLI &lt;b&gt;test&lt;/b&gt; (constructed)" in page
    assert "Hotline &lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    code, markdown, _ = run_cli(capsys, "exercise", "report", exercise_id)
    assert "| sunat | beacon | report-it | 10 |" in markdown
    assert "| sunat | 4 | called the hotline instead | cli |" in markdown

    code, out, _ = run_cli(capsys, "exercise", "status", exercise_id, "--json")
    assert json.loads(out)["status"] == "FINISHED"
    code, out, _ = run_cli(capsys, "exercise", "list", "--json")
    assert [r["id"] for r in json.loads(out)["runs"]] == [exercise_id]
    code, out, _ = run_cli(capsys, "exercise", "purge", exercise_id, "--json")
    assert json.loads(out)["removed"]["alerts"] == 2
    code, out, err = run_cli(capsys, "exercise", "status", exercise_id)
    assert code == 1 and "no exercise" in err
    with services.store.read() as conn:
        actions = list(conn.execute(select(audit_log.c.action).where(
            audit_log.c.object_id == exercise_id).order_by(audit_log.c.seq)).scalars())
    assert actions[:2] == ["exercise.create", "exercise.start"]
    assert actions[-4:] == ["exercise.finish", "exercise.score", "exercise.lesson",
                            "exercise.purge"]
