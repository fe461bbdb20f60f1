"""Property test of the engine on generated playbooks (constructed graphs, not library
ones): whatever the graph, tasks, actions and decisions, a run finishes with every step done
or skipped exactly as the reference rule says — a branch not taken by a decision that ran is
skipped, a step whose needs were all skipped is skipped, everything else is done — and each
task is created once."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbooks.loader import load_text
from playbooks.model import Playbook
from tests.playbooks.kit import ANALYST, Driver, built, states  # noqa: F401


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, Any]:
    """Steps s0..sN with needs on earlier steps and decisions branching to later ones."""
    count = draw(st.integers(min_value=1, max_value=8))
    needs: list[set[int]] = [set() for _ in range(count)]
    kinds = [draw(st.sampled_from(["task", "action", "decision"])) for _ in range(count)]
    branches: dict[int, tuple[list[int], list[int]]] = {}
    for index in range(count):
        earlier = list(range(index))
        if earlier:
            needs[index] |= set(draw(st.lists(st.sampled_from(earlier), max_size=3)))
        if kinds[index] == "decision":
            later = list(range(index + 1, count))
            targets = draw(st.lists(st.sampled_from(later), unique=True)) if later else []
            cut = draw(st.integers(min_value=0, max_value=len(targets)))
            branches[index] = (targets[:cut], targets[cut:])
            for target in targets:
                needs[target].add(index)
    outcome = {i: draw(st.booleans()) for i in branches}
    return {"needs": needs, "kinds": kinds, "branches": branches, "outcome": outcome}


def as_yaml(graph: dict[str, Any], serial: int) -> str:
    lines = [f"id: generated-{serial}", "title: Generated", "version: 1", "auto_start: false",
             "steps:"]
    for index, kind in enumerate(graph["kinds"]):
        needs = ", ".join(f"s{n}" for n in sorted(graph["needs"][index]))
        lines += [f"  - id: s{index}", f"    name: Step {index}", "    phase: containment",
                  f"    needs: [{needs}]"]
        if kind == "task":
            lines.append(f"    task: {{title: task {index}}}")
        elif kind == "action":
            lines.append(f"    action: {{name: add-tag, with: {{tag: t{index}}}}}")
        else:
            then, other = graph["branches"][index]
            condition = "case.alerts >= 0" if graph["outcome"][index] else "case.alerts < 0"
            lines += ["    decision:", f"      if: '{condition}'",
                      f"      then: [{', '.join(f's{t}' for t in then)}]",
                      f"      else: [{', '.join(f's{t}' for t in other)}]"]
    return "\n".join(lines) + "\n"


def expected_states(graph: dict[str, Any]) -> dict[str, str]:
    """The reference rule, in index order (every branch target comes after its decision)."""
    losers: set[int] = set()
    result: dict[str, str] = {}
    for index in range(len(graph["kinds"])):
        needs = graph["needs"][index]
        skipped = index in losers or (needs and all(result[f"s{n}"] == "skipped" for n in needs))
        result[f"s{index}"] = "skipped" if skipped else "done"
        if not skipped and index in graph["branches"]:
            then, other = graph["branches"][index]
            chosen, lost = (then, other) if graph["outcome"][index] else (other, then)
            losers |= set(lost) - set(chosen)
    return result


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(graph=graphs())
def test_generated_playbooks_finish_as_the_reference_says(built, graph) -> None:  # noqa: F811
    serial = len(built.playbooks.playbooks)
    playbook: Playbook = load_text(as_yaml(graph, serial))
    built.playbooks.playbooks[playbook.id] = playbook
    case_id = built.cases.create({"title": f"generated {serial}",
                                  "classification": "other/undetermined"}, ANALYST)["id"]
    run_id = built.playbooks.start(playbook.id, case_id, ANALYST)
    Driver(built, case_id).drive(rounds=len(graph["kinds"]) + 2)
    view = built.playbooks.run_view(run_id)
    assert view["state"] == "done"
    assert states(view) == expected_states(graph)
    done_tasks = [s for s in view["steps"] if s["kind"] == "task" and s["state"] == "done"]
    assert len(built.tasks.list(case_id)) == len(done_tasks)
