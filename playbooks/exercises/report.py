"""The after-action report: Markdown, and HTML with charts (matplotlib PNGs as data URIs).

It holds the run's facts (scenario, objectives, status, clock), the timeline of injects and
of the participants' reports, per-entity and per-sector scores, the slowest and the missed
expectations, the coordinators' manual scores and their lessons-learned notes. Every text
that came from a scenario or a participant is escaped for the format it lands in.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from sqlalchemy import insert, select

from cases.services import audit
from cases.store import Store
from cases.store.tables import incidents
from playbooks.exercises import runs
from playbooks.exercises.clock import Clock
from playbooks.exercises.model import format_offset
from playbooks.exercises.scoring import scoreboard
from playbooks.exercises.tables import exercise_lessons
from pukara.core.errors import InvalidInput
from pukara.core.schema import utcnow

SLOWEST = 5


def add_lesson(store: Store, exercise_id: str, text: str, actor: audit.Actor) -> None:
    """Record a coordinator's lessons-learned note (audited)."""
    if not text.strip():
        raise InvalidInput("a lesson needs text", field="text")
    with store.write() as conn:
        runs.row(conn, exercise_id)
        conn.execute(insert(exercise_lessons).values(exercise_id=exercise_id, author=actor.name,
                                                     text=text, created_at=utcnow()))
        audit.append(conn, actor, "exercise.lesson", "exercise", exercise_id)


def collect(store: Store, exercise_id: str) -> dict[str, Any]:
    """Everything the report shows, as data."""
    state = runs.status(store, exercise_id)
    board = scoreboard(store, exercise_id)
    with store.read() as conn:
        current = runs.row(conn, exercise_id)
        clock, pauses = Clock.of(current), runs.pauses(conn, exercise_id)
        reports = [{"entity": r.entity_id, "tracking": r.tracking_number,
                    "classification": r.classification, "title": r.title,
                    "seconds": clock.exercise_seconds_of(r.created_at, pauses)}
                   for r in conn.execute(select(incidents).where(
                       incidents.c.exercise_id == exercise_id))]
        lessons = [dict(r) for r in conn.execute(select(exercise_lessons).where(
            exercise_lessons.c.exercise_id == exercise_id)
            .order_by(exercise_lessons.c.id)).mappings()]
    met = [o for o in board["outcomes"] if o["state"] == "met" and o["seconds"] is not None]
    return {"state": state, "board": board, "scenario": current["scenario"],
            "reports": sorted(reports, key=lambda r: r["seconds"]), "lessons": lessons,
            "pauses": len(pauses),
            "slowest": sorted(met, key=lambda o: -o["seconds"])[:SLOWEST],
            "missed": [o for o in board["outcomes"] if o["state"] == "missed"]}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def minutes(seconds: float | None) -> float | None:
    """Exercise seconds as minutes with one decimal."""
    return None if seconds is None else round(seconds / 60, 1)


def _sections(data: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    state, board = data["state"], data["board"]
    return [
        ("Timeline of injects", ["At", "Inject", "Kind", "State", "Late (s)", "Result"],
         [[format_offset(i["offset_seconds"]), i["id"], i["kind"], i["state"],
           None if i["lateness_seconds"] is None else round(i["lateness_seconds"], 3),
           i["result"]] for i in state["injects"]]),
        ("Reports received", ["At", "Entity", "Tracking", "Classification", "Title"],
         [[format_offset(r["seconds"]), r["entity"], r["tracking"], r["classification"],
           r["title"]] for r in data["reports"]]),
        ("Scores per entity", ["Entity", "Sector", "Points", "Max", "Met", "Missed", "Pending",
                               "Mean min. to report"],
         [[s["entity"], s["sector"], s["points"], s["max_points"], s["met"], s["missed"],
           s["pending"], s["mean_minutes_to_report"]] for s in board["scores"]]),
        ("Scores per sector", ["Sector", "Entities", "Points", "Max", "Met", "Missed"],
         [[s["sector"], s["entities"], s["points"], s["max_points"], s["met"], s["missed"]]
          for s in board["sectors"]]),
        ("Slowest expectations met", ["Entity", "Inject", "Expectation", "Minutes"],
         [[o["entity"], o["inject"], o["expectation"], minutes(o["seconds"])]
          for o in data["slowest"]]),
        ("Missed expectations", ["Entity", "Inject", "Expectation", "Points lost"],
         [[o["entity"], o["inject"], o["expectation"], o["max_points"]]
          for o in data["missed"]]),
        ("Manual scores", ["Entity", "Points", "Comment", "By"],
         [[s["entity"], m["points"], m["comment"], m["by"]]
          for s in board["scores"] for m in s["manual"]]),
    ]


def markdown(store: Store, exercise_id: str) -> str:
    """The after-action report as Markdown."""
    data = collect(store, exercise_id)
    state, scenario = data["state"], data["scenario"]
    lines = [f"# After-action report: {_cell(scenario['title'])}", "",
             f"Exercise `{exercise_id}` · status **{state['status']}** · speed "
             f"{state['speed']:g}× · {data['pauses']} pause(s) · exercise time "
             f"{format_offset(state['exercise_seconds'])}", "",
             _cell(scenario.get("description", "")), "", "## Objectives", ""]
    lines += [f"- {_cell(o)}" for o in scenario.get("objectives", [])] + [""]
    for title, headers, rows in _sections(data):
        lines += [f"## {title}", ""] + (_table(headers, rows) if rows else ["(none)", ""])
    lines += ["## Lessons learned", ""]
    lines += [f"- {_cell(n['text'])} ({_cell(n['author'])})" for n in data["lessons"]] or [
        "(none recorded)"]
    return "\n".join(lines) + "\n"


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def charts(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(caption, PNG data URI) for the points per entity and the time to report."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    scores = data["board"]["scores"]
    names = [s["entity"] for s in scores]
    points = Figure(figsize=(6, 0.4 * len(names) + 1.2))
    axes = points.subplots()
    axes.barh(names, [s["max_points"] for s in scores], color="#dddddd", label="possible")
    axes.barh(names, [s["points"] for s in scores], color="#2b6cb0", label="scored")
    axes.invert_yaxis()
    axes.set_xlabel("points")
    axes.legend(loc="lower right")
    speed = Figure(figsize=(6, 0.4 * len(names) + 1.2))
    axes = speed.subplots()
    axes.barh(names, [s["mean_minutes_to_report"] or 0 for s in scores], color="#c05621")
    axes.invert_yaxis()
    axes.set_xlabel("mean minutes to report (exercise time)")
    return [("Points per entity", _png(points)), ("Time to report", _png(speed))]


def to_html(store: Store, exercise_id: str) -> str:
    """The after-action report as one self-contained HTML page."""
    data = collect(store, exercise_id)
    scenario, state = data["scenario"], data["state"]
    esc = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>{esc(scenario['title'])}</title>",
             "<style>body{font-family:sans-serif;max-width:60em}td,th{border:1px solid #ccc;"
             "padding:2px 6px}table{border-collapse:collapse}</style>",
             f"<h1>After-action report: {esc(scenario['title'])}</h1>",
             f"<p>Exercise <code>{esc(exercise_id)}</code> · status <b>{esc(state['status'])}"
             f"</b> · speed {state['speed']:g}×</p><p>{esc(scenario.get('description', ''))}</p>",
             "<h2>Objectives</h2><ul>"]
    parts += [f"<li>{esc(o)}</li>" for o in scenario.get("objectives", [])] + ["</ul>"]
    for caption, uri in charts(data):
        parts.append(f"<h2>{esc(caption)}</h2><img alt='{esc(caption)}' src='{uri}'>")
    for title, headers, rows in _sections(data):
        parts.append(f"<h2>{esc(title)}</h2><table><tr>"
                     + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc('' if v is None else str(v))}</td>" for v in row)
                  + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("<h2>Lessons learned</h2><ul>")
    parts += [f"<li>{esc(n['text'])} ({esc(n['author'])})</li>" for n in data["lessons"]]
    return "".join(parts) + "</ul>\n"
