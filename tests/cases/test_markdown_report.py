"""The Markdown report of a case from the real samples: sections, TLP label, escaping of
untrusted text, recipients' TLP, deadlines of the linked incident, refusal of RED."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cases.sharing.case_data import load_case, mark_observable
from cases.sharing.markdown_report import export_report, md_escape, render
from cases.store.tables import audit_log
from pukara.core.errors import TLPViolation
from tests.cases.sharing_kit import ANALYST, SharedCase, shared_case

__all__ = ["shared_case"]

MD5 = "0749bae92ca336a02c83d126e04ec628"


def test_report_sections_and_values(shared_case: SharedCase) -> None:
    built = shared_case.built
    text = export_report(built.store, load_case(built.store, shared_case.case_id),
                         built.settings.regime(), ANALYST)
    lines = text.splitlines()
    assert lines[0] == "**TLP:AMBER**"
    assert lines[2] == f"# {md_escape(shared_case.number)}: Nmap SYN Port Scan Detected"
    for heading in ("## Summary", "## Entities", "## Timeline", "## Tasks", "## Observables",
                    "## Reporting deadlines"):
        assert heading in lines
    assert "| minsa | Ministerio de Salud |" in lines
    assert f"| md5 | {MD5} | TLP:GREEN | \\- |" in lines
    assert "| ipv4 | 192\\.168\\.137\\.1 | TLP:AMBER | \\- |" in lines
    incident = built.cases.get(shared_case.case_id)["incidents"][0]["tracking_number"]
    tracking = md_escape(incident)
    assert f"| {tracking} | minsa | early\\-warning | 2026\\-06\\-13T09:00:00Z | overdue |" in lines
    with built.store.read() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.action == "case.share.markdown")
                           ).one()
    assert row.details["bytes"] == len(text.encode())


def test_untrusted_title_is_inert(shared_case: SharedCase) -> None:
    built = shared_case.built
    built.cases.update(shared_case.case_id, {
        "title": "[click](http://evil.example) <img src=x onerror=alert(1)> |x| \x1b[31m"},
        ANALYST)
    heading = render(load_case(built.store, shared_case.case_id)).splitlines()[2]
    assert heading == (f"# {md_escape(shared_case.number)}: \\[click\\]\\(http://evil\\.example\\) "
                       "&lt;img src=x onerror=alert\\(1\\)&gt; \\|x\\| \\\\x1b\\[31m")


def test_strict_observable_only_for_its_originator(shared_case: SharedCase) -> None:
    store = shared_case.built.store
    mark_observable(store, shared_case.case_id, ("md5", MD5), "amber+strict", ANALYST)
    export = load_case(store, shared_case.case_id)
    assert MD5 not in render(export, recipient="essalud")
    assert MD5 in render(export, recipient="minsa")


def test_red_case_report_refused(shared_case: SharedCase) -> None:
    built = shared_case.built
    built.cases.update(shared_case.case_id, {"tlp": "red"}, ANALYST)
    with pytest.raises(TLPViolation, match="TLP:RED is for named recipients only"):
        render(load_case(built.store, shared_case.case_id))
