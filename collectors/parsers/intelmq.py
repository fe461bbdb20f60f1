"""IntelMQ events (JSON lines with harmonisation keys) → Alerts.

Each line is one IntelMQ event as the file or REST outputs write it: flat dotted keys
(``source.ip``, ``classification.type``, ``feed.name``, ``time.source``, ``raw`` …); nested
objects are flattened first, so ``{"source": {"ip": …}}`` works too. The mapping is
:func:`collectors.parsers._common.alert_from_fields`: source/destination addresses, names,
URLs, ASNs and networks and ``malware.hash.*`` become observables (roles ``src``/``dst``/
``file``), ``classification.*`` the RSIT classification (legacy eCSIRT types accepted; an
unknown one is kept in ``extra["classification.invalid"]`` and the alert stays
``other/undetermined``), ``feed.name`` the alert source, ``time.source`` the observation
time, ``tlp`` the TLP (IntelMQ's WHITE is CLEAR), the base64 ``raw`` is decoded into
``extra["raw.decoded"]``. Every other key, ``extra.*`` included, is kept in ``extra`` under
its own name. The original line is the alert's ``raw``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from collectors.parsers._common import alert_from_fields, flatten, json_lines, reason_of, stamp
from collectors.parsers.base import failure, source_name
from pukara.core.schema import ParseFailure, RawReport, Record

_MARKERS = (b'"classification.', b'"source.ip"', b'"feed.name"', b'"source.fqdn"')


class IntelMQParser:
    """IntelMQ harmonised events, one JSON object per line."""

    name: ClassVar[str] = "intelmq"
    priority: ClassVar[int] = 20

    def sniff(self, head: bytes) -> bool:
        """A JSON object line with IntelMQ's dotted harmonisation keys."""
        return head.lstrip()[:1] == b"{" and any(marker in head for marker in _MARKERS)

    def parse(self, report: RawReport) -> Iterator[Record]:
        """One Alert per event line; a ParseFailure for a line that is not a usable event."""
        where = source_name(report)
        for number, line, item in json_lines(report):
            if isinstance(item, ParseFailure):
                yield item
                continue
            raw = line.decode("utf-8", "backslashreplace")
            try:
                alert = alert_from_fields(
                    flatten(item),
                    default_source="intelmq",
                    raw=raw,
                    default_time=report.received_at,
                )
            except Exception as exc:  # one bad record never stops the file
                yield failure(where, number, line, reason_of(exc))
                continue
            yield stamp(alert, report)
