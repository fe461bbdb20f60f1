"""Maildir source on a real temporary Maildir filled with the PyMISP sample mails.

``deliver`` is a FAKE of the composition root's pipeline (the seam the source is given); the
Maildir reading and Seen-marking run for real, and the e-mail parser reads what is delivered.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

from collectors.parsers.eml import EmailParser
from collectors.sources.maildir import MaildirSource
from pukara.core.schema import IncidentReport, IngestResult, RawReport


def filled_maildir(tmp_path: Path, shared_data: Path, names: list[str]) -> Path:
    box = mailbox.Maildir(tmp_path / "inbox", create=True)
    for name in names:
        box.add((shared_data / "email" / name).read_bytes())
    box.close()
    return tmp_path / "inbox"


def titles_of(report: RawReport) -> str:
    record = next(iter(EmailParser().parse(report)))
    assert isinstance(record, IncidentReport)
    return record.title


def test_run_once_delivers_each_message_once(tmp_path: Path, shared_data: Path) -> None:
    path = filled_maildir(tmp_path, shared_data, ["mail_2.eml", "mail_3.eml"])
    seen: list[tuple[str, str | None, str]] = []

    def deliver(report: RawReport) -> IngestResult:
        seen.append((report.format or "", report.entity_id, titles_of(report)))
        return IngestResult(accepted=1)

    source = MaildirSource(path, entity_id="minsa")
    summary = source.run_once(deliver)
    assert len(summary.delivered) == 2 and summary.result.accepted == 2
    assert sorted(seen) == [
        ("eml", "minsa", "Testing Manuel Lemos' MIME E-mail composing and sending PHP class: "
         "HTML message"),
        ("eml", "minsa", "multi-encoded-email"),
    ]  # fmt: skip
    assert list((path / "new").iterdir()) == []
    assert sorted(p.name.rsplit(":", 1)[1] for p in (path / "cur").iterdir()) == ["2,S", "2,S"]
    restarted = MaildirSource(path, entity_id="minsa")
    assert restarted.run_once(deliver).delivered == []
    assert len(seen) == 2


def test_failed_delivery_leaves_the_message_unseen(tmp_path: Path, shared_data: Path) -> None:
    path = filled_maildir(tmp_path, shared_data, ["mail_2.eml"])

    def broken(report: RawReport) -> IngestResult:
        raise RuntimeError("store unavailable")

    source = MaildirSource(path)
    assert len(source.run_once(broken).failed) == 1
    assert len(list((path / "new").iterdir())) == 1
    assert len(MaildirSource(path).unseen_keys()) == 1


def test_reports_generator_marks_after_the_consumer_moves_on(
    tmp_path: Path, shared_data: Path
) -> None:
    path = filled_maildir(tmp_path, shared_data, ["mail_1_headers_only.eml", "mail_2.eml"])
    source = MaildirSource(path)
    reports = source.reports()
    first = next(reports)
    assert first.format == "eml" and first.filename.endswith(".eml")
    assert len(source.unseen_keys()) == 2  # still being processed: not yet Seen
    assert titles_of(first) in {"multi-encoded-email", "письмо уведом-е"}
    assert len(list(reports)) == 1
    assert source.unseen_keys() == []


def test_already_seen_messages_in_cur_are_skipped(tmp_path: Path, shared_data: Path) -> None:
    box = mailbox.Maildir(tmp_path / "inbox", create=True)
    seen_message = mailbox.MaildirMessage((shared_data / "email" / "mail_2.eml").read_bytes())
    seen_message.set_subdir("cur")
    seen_message.add_flag("S")
    box.add(seen_message)
    read_but_flagged = mailbox.MaildirMessage((shared_data / "email" / "mail_3.eml").read_bytes())
    read_but_flagged.set_subdir("cur")
    read_but_flagged.add_flag("F")
    kept = box.add(read_but_flagged)
    source = MaildirSource(tmp_path / "inbox")
    assert source.unseen_keys() == [kept]
    source.run_once(lambda report: IngestResult(accepted=1))
    assert sorted(p.name.rsplit(":", 1)[1] for p in (tmp_path / "inbox" / "cur").iterdir()) == [
        "2,FS",
        "2,S",
    ]
