"""Packet captures (pcap and pcapng): flows, scans, DNS, HTTP, TLS SNI, payloads for YARA.

Records are read one at a time with scapy's raw readers (``pcap_decode``), decoded cheaply,
and folded into bounded aggregates (``pcap_capture``); alerts come out at the end
(``pcap_alerts``), one per aggregate rather than one per packet or flow:

- a scan alert (``information-gathering/scanner``, medium) per source whose *unanswered*
  probes (SYN never SYN-ACKed, UDP without reply, ARP without reply) reached at least
  ``scan_min_ports`` ports on one host (default 100) or ``scan_min_hosts`` hosts on one
  port (default 64);
- one DNS alert per (name, type) with its answers, one HTTP alert per TCP session with
  its request heads and the first ``stream_bytes`` of each side as attachments (at most
  ``payload_total`` over the capture), one TLS alert per (SNI, server, port) with JA3;
- one flow alert per (client, server, server port, protocol), busiest first, at most
  ``max_flow_alerts``; then a capture summary with totals and whatever a cap turned away.

A damaged record (truncated, corrupt header) ends reading with a ParseFailure naming the
record; what came before is kept and summarised. A record with ``caplen > len`` or an
unknown pcapng block is reported and skipped. With ``metadata["path"]`` set and
``metadata.get("sandbox", True)``, the file at that path is parsed in a resource-limited
child process (``pcap_sandbox``) and ``report.stream`` is not read; limits come from
``sandbox_cpu_seconds``, ``sandbox_memory_mb`` and ``sandbox_wall_seconds``. Every cap and
threshold above is a ``CaptureLimits`` field, settable in ``report.metadata``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, ClassVar

from collectors.parsers.base import source_name
from collectors.parsers.pcap_alerts import Origin, capture_alerts
from collectors.parsers.pcap_capture import Capture, CaptureLimits
from collectors.parsers.pcap_decode import Frame, RecordError, capture_kind, iter_frames
from pukara.core.schema import ParseFailure, RawReport, Record

#: per capture; a file of millions of damaged records must not become millions of failures
MAX_LISTED_FAILURES = 100


def _failure(where: str, error: RecordError) -> ParseFailure:
    return ParseFailure(source=where, record=error.record, reason=error.reason)


def _record_failures(stream: IO[bytes], where: str, capture: Capture) -> Iterator[ParseFailure]:
    feed = capture.feed
    for item in iter_frames(stream, where):
        if type(item) is Frame:
            try:
                feed(item)
            except Exception as exc:  # a decoder bug must not lose the capture
                raw = item.data[:256].hex()
                yield ParseFailure(
                    source=where, record=item.number, raw=raw, reason=f"undecodable: {exc!r}"
                )
        elif isinstance(item, RecordError):
            yield _failure(where, item)


def feed_capture(stream: IO[bytes], where: str, capture: Capture) -> Iterator[ParseFailure]:
    """Feed every frame of ``stream`` into ``capture``; yield the failures as they occur.

    At most ``MAX_LISTED_FAILURES`` are listed; the rest are counted in one last failure.
    """
    unlisted = 0
    last: ParseFailure | None = None
    for number, failure in enumerate(_record_failures(stream, where, capture), 1):
        if number <= MAX_LISTED_FAILURES:
            yield failure
        else:
            unlisted += 1
            last = failure
    if last is not None:
        yield last.model_copy(
            update={
                "reason": f"{unlisted} more record failures not listed; the last: {last.reason}"
            }
        )


def parse_capture(
    stream: IO[bytes], where: str, origin: Origin, limits: CaptureLimits
) -> Iterator[Record]:
    """Parse one capture in this process: failures as they occur, alerts at the end."""
    capture = Capture(limits)
    yield from feed_capture(stream, where, capture)
    yield from capture_alerts(capture, origin)


def origin_of(report: RawReport) -> Origin:
    """The provenance every alert of this report carries."""
    return Origin(
        source=report.source,
        filename=report.filename,
        entity_id=report.entity_id,
        exercise_id=report.exercise_id,
        received_at=report.received_at,
    )


class PcapParser:
    """pcap / pcapng captures."""

    name: ClassVar[str] = "pcap"
    priority: ClassVar[int] = 10

    def sniff(self, head: bytes) -> bool:
        """A pcap (any byte order, micro- or nanosecond) or pcapng magic."""
        return capture_kind(head) is not None

    def parse(self, report: RawReport) -> Iterator[Record]:
        """Parse in a sandboxed child when the report has a file path, else in-process."""
        limits = CaptureLimits.from_metadata(report.metadata)
        path = report.metadata.get("path")
        if report.metadata.get("sandbox", True) and isinstance(path, str) and path:
            from collectors.parsers.pcap_sandbox import SandboxLimits, run_sandboxed

            yield from run_sandboxed(
                path, SandboxLimits.from_metadata(report.metadata), origin_of(report), limits
            )
            return
        yield from parse_capture(report.stream, source_name(report), origin_of(report), limits)
