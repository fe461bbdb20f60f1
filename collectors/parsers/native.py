"""Pukara's own alert JSON: what ``POST /api/v1/alerts`` receives by default.

Either NDJSON (one Alert object per line, streamed) or one JSON array of Alert objects.
``ijson`` is not installed, so an array is read whole with orjson: it is capped at
``MAX_ARRAY_BYTES`` (10 MB, the API body cap); a larger array is refused with one
ParseFailure that says to send NDJSON instead. Each element or line that does not validate
as :class:`pukara.core.schema.Alert` becomes a ParseFailure with its line (NDJSON) or
``record`` index (array, 0-based) and pydantic's message naming the field. The report's
entity (the authenticated sender) and exercise override what a record says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import orjson

from collectors.parsers._common import json_lines, reason_of, stamp
from collectors.parsers.base import failure, source_name
from pukara.core.schema import Alert, ParseFailure, RawReport, Record

MAX_ARRAY_BYTES = 10 * 1024 * 1024


def _first_byte(report: RawReport) -> bytes:
    """The first non-blank byte, consumed stream included (we rewind to where we began)."""
    stream = report.stream
    start = stream.tell()
    head = stream.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    stream.seek(start)
    return head[:1]


class NativeAlertParser:
    """Alerts in Pukara's own JSON schema (array or NDJSON)."""

    name: ClassVar[str] = "alerts"
    priority: ClassVar[int] = 50

    def sniff(self, head: bytes) -> bool:
        """JSON (object or array) that has the Alert keys ``source`` and ``title``."""
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        return start in (b"{", b"[") and b'"title"' in head and b'"source"' in head

    def parse(self, report: RawReport) -> Iterator[Record]:
        """Validate each object as an Alert; ParseFailure for the ones that do not."""
        if _first_byte(report) == b"[":
            yield from self._array(report)
            return
        for number, line, item in json_lines(report):
            if isinstance(item, ParseFailure):
                yield item
                continue
            yield self._alert(item, report, line.decode("utf-8", "backslashreplace"), number, None)

    def _array(self, report: RawReport) -> Iterator[Record]:
        where = source_name(report)
        data = report.stream.read(MAX_ARRAY_BYTES + 1)
        if len(data) > MAX_ARRAY_BYTES:
            reason = f"JSON array larger than {MAX_ARRAY_BYTES} bytes; send NDJSON instead"
            yield failure(where, 1, data[:256], reason)
            return
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield failure(where, None, data[:2048], f"not valid JSON: {exc}")
            return
        if not isinstance(items, list):
            yield failure(where, 1, data[:2048], "expected a JSON array of alerts")
            return
        for index, item in enumerate(items):
            raw = orjson.dumps(item).decode()
            if not isinstance(item, dict):
                reason = f"element must be an object, not {type(item).__name__}"
                yield failure(where, None, raw, reason, record=index)
                continue
            yield self._alert(item, report, raw, None, index)

    def _alert(
        self, item: dict[str, Any], report: RawReport, raw: str, line: int | None, index: int | None
    ) -> Record:
        try:
            alert = Alert.model_validate({**item, "raw": item.get("raw") or raw})
        except Exception as exc:  # one bad record never stops the file
            return failure(source_name(report), line, raw, reason_of(exc), record=index)
        return stamp(alert, report)
