"""E-mail parser on the PyMISP test mails in /work/shared/data/email, and on CONSTRUCTED hostile
mails (SECURITY D10, E1-E3): deep nesting, many parts, huge headers, path-traversal file
names, a zip bomb and an overlapping-entry zip, all built here."""

from __future__ import annotations

import io
import struct
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from collectors.parsers.eml import (
    MAX_MULTIPARTS,
    EmailParser,
    classify,
    extract_observables,
    inspect_zip,
    sanitize_filename,
)
from pukara.core.schema import IncidentReport, ParseFailure, RawReport, Record

RECEIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def parse_bytes(data: bytes, entity_id: str | None = None) -> list[Record]:
    report = RawReport(
        stream=io.BytesIO(data),
        source="mail-minsa",
        filename="x.eml",
        entity_id=entity_id,
        received_at=RECEIVED,
    )
    return list(EmailParser().parse(report))


def one_report(data: bytes, entity_id: str | None = None) -> IncidentReport:
    records = parse_bytes(data, entity_id)
    assert len(records) == 1 and isinstance(records[0], IncidentReport), records
    return records[0]


def one_failure(data: bytes) -> ParseFailure:
    records = parse_bytes(data)
    assert len(records) == 1 and isinstance(records[0], ParseFailure), records
    return records[0]


def sample(shared_data: Path, name: str) -> bytes:
    return (shared_data / "email" / name).read_bytes()


def test_mail_3_subject_body_and_attachments(shared_data: Path) -> None:
    report = one_report(sample(shared_data, "mail_3.eml"))
    assert report.title == (
        "Testing Manuel Lemos' MIME E-mail composing and sending PHP class: HTML message"
    )
    assert report.reporter == "mlemos@acm.org"
    assert report.detected_at == datetime(2005, 4, 30, 22, 28, 29, tzinfo=UTC)
    assert report.external_id == "<20050430192829.0489.mlemos@acm.org>"
    assert [(a.filename, a.content_type, len(a.data)) for a in report.attachments] == [
        ("logo.gif", "image/gif", 1195),
        ("background.gif", "image/gif", 3265),
        ("attachment.txt", "text/plain", 64),
    ]
    assert report.attachments[0].sha256 == (
        "12e7b3891c58a1d5b84e63365f4a6dde97e04fef95c26412fe259a01581dfb52"
    )
    assert report.description.startswith("This is an HTML message.")
    assert "- logo.gif (image/gif, 1195 bytes" in report.description
    assert str(report.classification) == "other/undetermined"


def test_mail_2_encoded_bodies(shared_data: Path) -> None:
    report = one_report(sample(shared_data, "mail_2.eml"))
    assert report.title == "multi-encoded-email"
    assert report.reporter == "test@test.com"
    assert report.detected_at == datetime(2020, 12, 19, 2, 20, 15, tzinfo=UTC)
    assert report.description.startswith("這是一個文本字符串")
    assert report.attachments == []


def test_headers_only_mail_uses_received_time(shared_data: Path) -> None:
    for name in ("mail_1_headers_only.eml", "mail_multiple_to.eml"):
        report = one_report(sample(shared_data, name))
        assert report.title == "письмо уведом-е"
        assert report.reporter == "suvorov.s@nalg.ru"
        assert report.detected_at == RECEIVED
        assert EmailParser().sniff(sample(shared_data, name)[:8192])


def constructed_mail(
    body: str, subject: str = "Incidente", sender: str = "soc@minsa.gob.pe"
) -> EmailMessage:
    """A CONSTRUCTED incident mail."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "cert@cnsd.gob.pe"
    message["Subject"] = subject
    message["Date"] = "Mon, 23 Nov 2026 03:15:00 -0500"  # before RECEIVED
    message.set_content(body)
    return message


def test_constructed_defanged_observables_and_rsit_tag() -> None:
    body = (
        "Detectamos phishing desde hxxps://login-minsa[.]example[.]com/auth y el host\n"
        "evil[.]example[.]org (198.51.100.23). Adjunto con hash\n"
        "44d88612fea8a8f36de82e1278abb02f. Contacto: fraude[@]phish.example.net.\n"
        'Etiqueta: rsit:fraud="phishing". Ver CVE-2024-3094, report.pdf, v1.2.\n'
    )
    report = one_report(constructed_mail(body).as_bytes())
    assert [o.key for o in report.observables] == [
        "url:https://login-minsa.example.com/auth",
        "domain:evil.example.org",
        "ipv4:198.51.100.23",
        "md5:44d88612fea8a8f36de82e1278abb02f",
        "email:fraude@phish.example.net",
        "cve:CVE-2024-3094",
    ]
    assert str(report.classification) == "fraud/phishing"
    assert report.detected_at == datetime(2026, 11, 23, 8, 15, tzinfo=UTC)


def test_classify_class_slash_type() -> None:
    assert str(classify("Tipo: malicious-code/infected-system en 3 equipos")) == (
        "malicious-code/infected-system"
    )
    assert str(classify("nothing here")) == "other/undetermined"


def test_sender_never_decides_the_entity() -> None:
    """D10 / CVE-2023-27043: the From header is recorded, the channel's entity kept."""
    mail = constructed_mail("texto", sender="a@evil.pe@entidad.gob.pe").as_bytes()
    report = one_report(mail, entity_id="minsa")
    assert report.entity_id == "minsa"
    assert report.reporter == "a@evil.pe@entidad.gob.pe"
    assert one_report(mail).entity_id is None


def test_rfc2231_filename_with_path_is_sanitised() -> None:
    message = constructed_mail("ver adjunto")
    message.add_attachment(
        b"* * * * * root sh", maintype="application", subtype="octet-stream",
        filename=("utf-8", "", "../../etc/cron.d/x\x07"),
    )  # fmt: skip
    message.add_attachment(b"a", maintype="text", subtype="plain", filename="CON.txt")
    report = one_report(message.as_bytes())
    assert [a.filename for a in report.attachments] == ["x", "_CON.txt"]
    assert sanitize_filename("é" * 300, "f").encode() == ("é" * 127).encode()
    assert sanitize_filename("..", "attachment-3") == "attachment-3"
    assert sanitize_filename("C:\\Users\\x\\evil.html", "f") == "evil.html"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_attachment_is_listed_and_hashed_not_extracted() -> None:
    message = constructed_mail("muestras")
    data = zip_bytes({"../../evil.sh": b"echo pwned\n", "docs/readme.txt": b"hola"})
    message.add_attachment(data, maintype="application", subtype="zip", filename="muestras.zip")
    report = one_report(message.as_bytes())
    assert [a.filename for a in report.attachments] == ["muestras.zip"]
    assert "  zip: 2 entries" in report.description
    assert "    ../../evil.sh: 11 bytes, sha256 " in report.description
    assert "    docs/readme.txt: 4 bytes" in report.description


def test_zip_bomb_is_not_read() -> None:
    bomb = zip_bytes({"zeros.bin": bytes(20 * 1024 * 1024)})  # constructed: 20 MB of zeros
    assert len(bomb) < 100_000
    lines = inspect_zip(bomb)
    assert lines[0] == "zip: 1 entries"
    assert "not read (over the compression-ratio or total-size cap)" in lines[1]


def overlapping_zip(copies: int) -> bytes:
    """A CONSTRUCTED Fifield-style zip: many central entries share one local file."""
    base = zip_bytes({"a.txt": b"A" * 1000})
    eocd = base.rindex(b"PK\x05\x06")
    _, _, _, _, _, cd_size, cd_offset, _ = struct.unpack("<IHHHHIIH", base[eocd : eocd + 22])
    entry = base[cd_offset : cd_offset + cd_size]
    central = b"".join(entry for _ in range(copies))
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(central), cd_offset, 0)
    return base[:cd_offset] + central + end


def test_overlapping_entries_raise_badzipfile() -> None:
    data = overlapping_zip(50)
    try:
        inspect_zip(data)
    except zipfile.BadZipFile as exc:
        assert "Overlapped entries" in str(exc)
    else:
        raise AssertionError("overlapping zip was accepted")
    message = constructed_mail("zip")
    message.add_attachment(data, maintype="application", subtype="zip", filename="o.zip")
    report = one_report(message.as_bytes())
    assert "zip refused: BadZipFile: Overlapped entries: 'a.txt'" in report.description


def nested_multipart(levels: int) -> bytes:
    """A CONSTRUCTED message with ``levels`` nested multipart/mixed containers."""
    head = b"From: x@example.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
    inner = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(levels):
        boundary = f"b{level}".encode()
        inner = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--' + boundary
            + b"\r\n" + inner + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
    return head + inner


def test_thousand_nested_multiparts_rejected_before_parsing() -> None:
    failure = one_failure(nested_multipart(1000))
    assert failure.reason == f"more than {MAX_MULTIPARTS} multipart containers"


def test_nesting_deeper_than_twenty_rejected() -> None:
    assert one_failure(nested_multipart(25)).reason == "MIME nesting deeper than 20"
    assert one_report(nested_multipart(10)).description == "innermost"


def test_ten_thousand_parts_rejected() -> None:
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\np\r\n" for _ in range(10_000))
    data = (
        b"From: x@example.org\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + parts + b"--B--\r\n"
    )
    assert one_failure(data).reason == "more than 500 MIME parts"


def test_megabyte_header_rejected() -> None:
    data = b"From: x@example.org\r\nSubject: " + b"A" * 1_048_576 + b"\r\n\r\nbody\r\n"
    assert one_failure(data).reason == "header block larger than 65536 bytes"


def test_extract_observables_ignores_file_names_and_versions() -> None:
    assert extract_observables("see report.pdf and csrss.exe v1.2 e.g. 10.0") == []


def test_rfc2047_encoded_filename_with_path_is_sanitised() -> None:
    data = (
        b"From: a@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nhola\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?q?=2E=2E=2F=2E=2E=2Fetc=2Fpasswd?="'
        b"\r\n\r\nroot\r\n--B--\r\n"
    )  # constructed
    report = one_report(data)
    assert [a.filename for a in report.attachments] == ["passwd"]
    assert report.attachments[0].data == b"root"
    assert report.description.startswith("hola\n\nAttachments:\n- passwd (application/octet-stream")


def test_a_date_in_the_future_falls_back_to_receipt_time() -> None:
    ahead = constructed_mail("Ransomware en el servidor de archivos.")
    del ahead["Date"]
    ahead["Date"] = "Mon, 23 Nov 2026 09:06:00 +0000"  # 6 minutes after RECEIVED
    assert one_report(ahead.as_bytes()).detected_at == RECEIVED
    close = constructed_mail("Ransomware en el servidor de archivos.")
    del close["Date"]
    close["Date"] = "Mon, 23 Nov 2026 09:04:00 +0000"  # within the 5-minute skew
    assert one_report(close.as_bytes()).detected_at == datetime(2026, 11, 23, 9, 4, tzinfo=UTC)
