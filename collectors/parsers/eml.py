"""RFC 5322 e-mail incident reports, read with the stdlib ``email`` package within limits.

One IncidentReport per message: title = Subject, description = the text body (plus a listing
of the attachments), classification from an ``rsit:`` tag or ``class/type`` in the subject or
body (else other/undetermined), reporter = the From address, detected_at = Date (else, or when
Date is more than DATE_SKEW in the future, when the message was received). Observables are
extracted from subject and body, defanged forms understood. Attachments get a sanitised file
name and a size cap; zip attachments are listed and hashed member by member, never written
out, within caps on entries, total uncompressed size and compression ratio; overlapping
entries are refused with ``zipfile.BadZipFile``.

The parser records ``reporter`` from From but never decides the entity: ``report.entity_id``
comes from the authenticated channel (SECURITY D10).
"""

from __future__ import annotations

import email.policy
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import ClassVar

from publicsuffixlist import PublicSuffixList
from pydantic import ValidationError

from collectors.parsers.base import failure, source_name
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType, guess_type, normalize, refang
from pukara.core.schema import (
    MAX_TEXT,
    Attachment,
    Classification,
    IncidentReport,
    Observable,
    RawReport,
    Record,
    undetermined,
)
from pukara.core.taxonomy import accepted_types

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_MULTIPARTS = 50
MAX_DEPTH = 20
MAX_PARTS = 500
#: a Date header later than receipt by more than this is a wrong clock: receipt time is used
DATE_SKEW = timedelta(minutes=5)
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_OBSERVABLES = 1000
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_TOTAL = 50 * 1024 * 1024
MAX_ZIP_RATIO = 100
MAX_FILENAME_BYTES = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_MULTIPART = re.compile(rb"(?im)^content-type:[ \t]*multipart/")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BOUNDARY = re.compile(rb'(?i)\bboundary=("[^"\r\n]{1,200}"|[^\s;"]{1,200})')
_TOKEN_SPLIT = re.compile(r"[\s<>\"'(),;|]+")
_TRAILING = ".,:;!?)]}>*"
_RSIT_TAG = re.compile(r'rsit:([a-z-]+)="([a-z-]+)"', re.IGNORECASE)
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"{port}{i}" for port in ("COM", "LPT") for i in range(10)),
}
_EXTRACTED = {
    ObservableType.IPV4, ObservableType.IPV6, ObservableType.URL, ObservableType.EMAIL,
    ObservableType.MD5, ObservableType.SHA1, ObservableType.SHA256, ObservableType.SHA512,
    ObservableType.CVE, ObservableType.DOMAIN,
}  # fmt: skip
_PSL = PublicSuffixList()


class MessageRejected(Exception):
    """The message breaks a limit; it is reported as one ParseFailure."""


def sanitize_filename(name: str | None, fallback: str) -> str:
    """Base name only, no path or control characters, no reserved device name, ≤ 255 bytes."""
    text = _CONTROL.sub("", name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    text = text.lstrip(".").strip() or fallback
    if text.split(".", 1)[0].upper() in _RESERVED:
        text = f"_{text}"
    encoded = text.encode("utf-8")[:MAX_FILENAME_BYTES]
    return encoded.decode("utf-8", "ignore") or fallback


def shown(text: str) -> str:
    """Control characters as visible escapes, for text quoted into a description."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def extract_observables(text: str) -> list[Observable]:
    """Observables in free text, defanged forms (``hxxp://``, ``example[.]com``) included."""
    found: dict[str, Observable] = {}
    for token in _TOKEN_SPLIT.split(text):
        candidate = refang(token.strip().rstrip(_TRAILING)).rstrip(_TRAILING)
        if len(candidate) < 4 or len(candidate) > 2048:
            continue
        kind = guess_type(candidate)
        if kind not in _EXTRACTED:
            continue
        if (
            kind is ObservableType.DOMAIN
            and _PSL.publicsuffix(candidate, accept_unknown=False) is None
        ):
            continue
        assert kind is not None
        observable = Observable(type=kind, value=normalize(kind, candidate))
        found.setdefault(observable.key, observable)
        if len(found) >= MAX_OBSERVABLES:
            break
    return list(found.values())


def classify(text: str) -> Classification:
    """An ``rsit:class="type"`` tag or a ``class/type`` pair in the text, else undetermined."""
    for taxonomy, type_ in _RSIT_TAG.findall(text):
        try:
            return Classification(taxonomy=taxonomy, type=type_)
        except (InvalidInput, ValidationError):
            continue
    for taxonomy, types in accepted_types().items():
        for type_ in types:
            if re.search(
                rf"(?<![\w-]){re.escape(taxonomy)}/{re.escape(type_)}(?![\w-])", text, re.I
            ):
                return Classification(taxonomy=taxonomy, type=type_)
    return undetermined()


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML body (no script execution, just the character data)."""
    reader = _TextOfHtml()
    reader.feed(html)
    reader.close()
    return " ".join(" ".join(reader.parts).split())


def inspect_zip(data: bytes) -> list[str]:
    """Lines describing a zip: members with sizes and SHA-256, read in memory within caps.

    Raises ``zipfile.BadZipFile`` for an unreadable archive or overlapping entries.
    """
    archive = zipfile.ZipFile(io.BytesIO(data))
    members = archive.infolist()
    _check_overlaps(archive, members)
    lines = [f"zip: {len(members)} entries"]
    budget = MAX_ZIP_TOTAL
    for number, member in enumerate(members, start=1):
        if number > MAX_ZIP_ENTRIES:
            lines.append(f"  … listing stopped at {MAX_ZIP_ENTRIES} entries")
            break
        name = shown(member.filename)[:300]
        ratio = member.file_size / max(1, member.compress_size)
        if member.is_dir():
            lines.append(f"  {name} (directory)")
            continue
        if ratio > MAX_ZIP_RATIO or member.file_size > budget:
            lines.append(
                f"  {name}: {member.file_size} bytes declared, ratio {ratio:.0f}: not read "
                "(over the compression-ratio or total-size cap)"
            )
            budget = 0
            continue
        digest, size = _hash_member(archive, member, budget)
        budget -= size
        lines.append(f"  {name}: {size} bytes, sha256 {digest}")
    return lines


def _check_overlaps(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> None:
    """Refuse entries whose data overlaps the next entry (Fifield-style zip bombs)."""
    ordered = sorted(members, key=lambda m: m.header_offset)
    ends = [m.header_offset for m in ordered[1:]] + [getattr(archive, "start_dir", 2**63)]
    for member, limit in zip(ordered, ends, strict=True):
        local_end = member.header_offset + 30 + len(member.orig_filename.encode("utf-8"))
        if local_end + member.compress_size > limit:
            raise zipfile.BadZipFile(f"Overlapped entries: {member.orig_filename!r}")


def _hash_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with archive.open(member) as stream:
        while chunk := stream.read(1024 * 1024):
            size += len(chunk)
            if size > budget or size > MAX_ZIP_RATIO * max(1, member.compress_size):
                raise zipfile.BadZipFile(f"{member.filename!r}: more data than declared or allowed")
            digest.update(chunk)
    return digest.hexdigest(), size


class EmailParser:
    """One RFC 5322 message per report → one IncidentReport."""

    name: ClassVar[str] = "eml"
    priority: ClassVar[int] = 40

    def sniff(self, head: bytes) -> bool:
        """Header lines at the top, including From, Subject or MIME-Version."""
        block = _HEADER_END.split(head, 1)[0].lower()
        first = block.split(b"\n", 1)[0]
        looks_like_header = re.match(rb"^[\x21-\x39\x3b-\x7e]+:", first) is not None
        known = (b"\nfrom:", b"\nsubject:", b"\nmime-version:", b"\nmessage-id:", b"\nreceived:")
        return looks_like_header and any(k in b"\n" + block for k in known)

    def parse(self, report: RawReport) -> Iterator[Record]:
        """The message as one IncidentReport, or one ParseFailure saying which limit broke."""
        where = source_name(report)
        data = report.stream.read(MAX_MESSAGE_BYTES + 1)
        try:
            message = _parse_within_limits(data)
            yield _Reader(report, message).incident()
        except MessageRejected as exc:
            yield failure(where, None, data[:2048], str(exc))
        except (InvalidInput, ValidationError) as exc:
            yield failure(where, None, data[:2048], f"cannot build the incident report: {exc}")


def _parse_within_limits(data: bytes) -> EmailMessage:
    if len(data) > MAX_MESSAGE_BYTES:
        raise MessageRejected(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    split = _HEADER_END.search(data)
    header_size = split.start() if split else len(data)
    if header_size > MAX_HEADER_BYTES:
        raise MessageRejected(f"header block larger than {MAX_HEADER_BYTES} bytes")
    if len(_MULTIPART.findall(data)) > MAX_MULTIPARTS:
        raise MessageRejected(f"more than {MAX_MULTIPARTS} multipart containers")
    if _delimiter_lines(data) > MAX_PARTS + MAX_MULTIPARTS:
        raise MessageRejected(f"more than {MAX_PARTS} MIME parts")
    try:
        message = BytesParser(policy=email.policy.default).parsebytes(data)
    except (RecursionError, ValueError, LookupError) as exc:
        raise MessageRejected(f"unreadable MIME structure: {exc}") from None
    assert isinstance(message, EmailMessage)
    return message


def _delimiter_lines(data: bytes) -> int:
    """Lines opening a part of one of the declared multipart boundaries (counted before parsing,
    so a message with thousands of parts costs a regex scan, not a full parse)."""
    boundaries = {b.strip(b'"') for b in _BOUNDARY.findall(data)}
    if len(boundaries) > 2 * MAX_MULTIPARTS:
        raise MessageRejected(f"more than {2 * MAX_MULTIPARTS} MIME boundaries declared")
    return sum(
        len(re.findall(rb"(?m)^--" + re.escape(boundary) + rb"[ \t]*\r?$", data))
        for boundary in boundaries
        if boundary
    )


def _walk(message: Message) -> Iterator[Message]:
    """Leaf parts, depth-first, raising MessageRejected past MAX_DEPTH or MAX_PARTS."""
    pending: list[tuple[Message, int]] = [(message, 0)]
    count = 0
    while pending:
        part, depth = pending.pop()
        count += 1
        if count > MAX_PARTS:
            raise MessageRejected(f"more than {MAX_PARTS} MIME parts")
        if depth > MAX_DEPTH:
            raise MessageRejected(f"MIME nesting deeper than {MAX_DEPTH}")
        children = part.get_payload() if part.is_multipart() else None
        if isinstance(children, list):
            pending.extend(
                (child, depth + 1) for child in reversed(children) if isinstance(child, Message)
            )
        else:
            yield part


class _Reader:
    """Builds the IncidentReport of one parsed message."""

    def __init__(self, report: RawReport, message: EmailMessage) -> None:
        self.report = report
        self.message = message
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[Attachment] = []
        self.listing: list[str] = []

    def incident(self) -> IncidentReport:
        for number, part in enumerate(_walk(self.message), start=1):
            self._take(part, number)
        subject = shown(_header(self.message, "subject"))
        body = "\n\n".join(self.texts) or "\n\n".join(html_to_text(h) for h in self.htmls)
        description = body
        if self.listing:
            description = f"{body}\n\nAttachments:\n" + "\n".join(self.listing)
        return IncidentReport(
            title=(subject or "(no subject)")[:512],
            classification=classify(f"{subject}\n{body}"),
            detected_at=self._date(),
            description=description[:MAX_TEXT],
            observables=extract_observables(f"{subject}\n{body}"),
            external_id=_header(self.message, "message-id")[:128] or None,
            reporter=self._reporter(),
            attachments=self.attachments,
            source=self.report.source[:64] or "email",
            entity_id=self.report.entity_id,
            exercise_id=self.report.exercise_id,
        )

    def _take(self, part: Message, number: int) -> None:
        content_type = part.get_content_type()
        filename = part.get_filename()
        is_attachment = filename is not None or part.get_content_disposition() == "attachment"
        if not is_attachment and content_type in ("text/plain", "text/html"):
            text = _text(part)
            (self.texts if content_type == "text/plain" else self.htmls).append(text)
            return
        if not is_attachment and part.get_content_maintype() == "multipart":
            return
        self._attachment(part, filename, number, content_type)

    def _attachment(self, part: Message, filename: str | None, number: int, ctype: str) -> None:
        name = sanitize_filename(filename, f"attachment-{number}")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if len(data) > MAX_ATTACHMENT_BYTES:
            self.listing.append(
                f"- {name}: {len(data)} bytes, not kept (over {MAX_ATTACHMENT_BYTES})"
            )
            return
        attachment = Attachment(filename=name, content_type=ctype[:100], data=data)
        self.attachments.append(attachment)
        self.listing.append(f"- {name} ({ctype}, {len(data)} bytes, sha256 {attachment.sha256})")
        if data.startswith(b"PK\x03\x04") or name.lower().endswith(".zip"):
            try:
                self.listing.extend(f"  {line}" for line in inspect_zip(data))
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
                    EOFError, OSError) as exc:  # fmt: skip
                self.listing.append(f"  zip refused: {type(exc).__name__}: {shown(str(exc))}")

    def _date(self) -> datetime:
        try:
            value = self.message["date"]
        except (ValueError, TypeError, IndexError):
            return self.report.received_at
        stamp = getattr(value, "datetime", None)
        if not isinstance(stamp, datetime):
            return self.report.received_at
        if stamp.tzinfo is not None and stamp > self.report.received_at + DATE_SKEW:
            return self.report.received_at  # a sender's wrong clock must not refuse the report
        return stamp

    def _reporter(self) -> str | None:
        """The From address as written (recorded, never trusted for entity attribution)."""
        try:
            header = self.message["from"]
            addresses = getattr(header, "addresses", ())
            spec = addresses[0].addr_spec if addresses else ""
            text = spec if spec.strip("<>") else _raw_header(self.message, "from")
        except (ValueError, TypeError, IndexError):
            text = _raw_header(self.message, "from")
        return shown(text)[:200] or None


def _header(message: Message, name: str) -> str:
    try:
        return " ".join(str(message.get(name, "") or "").split())
    except (ValueError, TypeError, IndexError):
        return ""


def _raw_header(message: Message, name: str) -> str:
    """The header as received (before address parsing), whitespace folded."""
    for key, value in message.raw_items():
        if key.lower() == name:
            return " ".join(str(value).split())
    return ""


def _text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else part.get_payload()
    except (LookupError, ValueError, AssertionError):
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return content if isinstance(content, str) else ""
