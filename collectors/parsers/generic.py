"""Generic CSV and JSON feeds, driven by a field mapping (IntelMQ-style target names).

The mapping comes from ``report.metadata`` and/or a small YAML file named by
``report.metadata["mapping_file"]`` (read with ``yaml.safe_load``; metadata keys win):

.. code-block:: yaml

    mapping:            # target field → source column (CSV header name, or 0-based index)
      source.ip: ip     #   or dotted key of a JSON object
      time.source: timestamp
      classification.type: type
    defaults: {classification.taxonomy: malicious-code, feed.name: my-feed}
    values:             # optional per-target value translation
      classification.type: {"malware url": malware-distribution}
    columns: [...]      # CSV without a header row: names for the columns
    delimiter: ","      # CSV; sniffed among , ; TAB | when not given
    comment: "#"        # CSV rows whose first cell starts with this are skipped (counted)

Target names are those of :func:`collectors.parsers._common.alert_from_fields`; source
columns not mapped are kept in ``extra``. Without a mapping, columns or keys that already
are IntelMQ names are used as they are; a record with nothing mapped is a ParseFailure.

CSV safety (SECURITY D7), under a partial-accept policy: every bad row is a ParseFailure
with its line number and the rest is accepted. The ``csv`` field size limit is set to
128 KiB (``csv.field_size_limit`` is process-wide); a NUL byte, a row whose column count
differs from the header's, an over-long field and a line that is not valid text are each
one failure. Newlines inside quotes are honoured. A UTF-8 BOM is dropped; a UTF-16 BOM
switches decoding to UTF-16. JSON: NDJSON is streamed; a top-level array is read whole
(capped at 10 MB, like the API body). Both sniff last (priority 90+), and conservatively.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import orjson
import yaml

from collectors.parsers._common import (
    alert_from_fields,
    flatten,
    json_lines,
    reason_of,
    stamp,
)
from collectors.parsers.base import MAX_LINE_BYTES, failure, source_name
from pukara.core.errors import ParseError
from pukara.core.schema import ParseFailure, RawReport, Record

MAX_FIELD_BYTES = 128 * 1024
MAX_ARRAY_BYTES = 10 * 1024 * 1024
_KNOWN_TARGET_PREFIXES = (
    "source.",
    "destination.",
    "classification.",
    "time.",
    "feed.",
    "malware.",
    "event_description.",
    "protocol.",
)
_CODE_MARKS = frozenset('()"{}<>;')
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def load_options(report: RawReport) -> dict[str, Any]:
    """The mapping options: the YAML file's, overridden by ``report.metadata``'s."""
    options: dict[str, Any] = {}
    mapping_file = report.metadata.get("mapping_file")
    if mapping_file:
        try:
            loaded = yaml.safe_load(Path(mapping_file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ParseError(f"cannot read mapping file {str(mapping_file)!r}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ParseError(f"mapping file {str(mapping_file)!r} must hold a mapping")
        options = loaded if "mapping" in loaded or "columns" in loaded else {"mapping": loaded}
    for key in ("mapping", "defaults", "values", "columns", "delimiter", "comment"):
        if key in report.metadata:
            options[key] = report.metadata[key]
    return options


def _is_target(name: str) -> bool:
    return name.startswith(_KNOWN_TARGET_PREFIXES) or name in ("tlp", "severity", "raw")


def apply_mapping(record: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """IntelMQ-named fields from ``record``: mapped columns, defaults, translated values,
    identity for columns that are already target names; the rest under their own names."""
    mapping: Mapping[str, Any] = options.get("mapping") or {}
    values: Mapping[str, Mapping[str, Any]] = options.get("values") or {}
    keys = list(record)
    fields: dict[str, Any] = dict(options.get("defaults") or {})
    used: set[str] = set()
    for target, column in mapping.items():
        name = keys[column] if isinstance(column, int) and 0 <= column < len(keys) else column
        value = record.get(name) if isinstance(name, str) else None
        if value in (None, ""):
            continue
        used.add(name)
        table = values.get(target)
        if isinstance(table, Mapping) and str(value) in table:
            value = table[str(value)]
        fields[target] = value
    mapped = bool(used)
    for key, value in record.items():
        if key in used or value in (None, ""):
            continue
        if not mapping and _is_target(key):
            mapped = True
        fields.setdefault(key, value)
    if not mapped:
        raise ValueError(
            "no mapped field in this record; give metadata['mapping'] or 'mapping_file' "
            "(target name → column), e.g. {'source.ip': 'ip'}"
        )
    return fields


def _encoding(head: bytes) -> tuple[str, int]:
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    return "utf-8", 0


class _Lines:
    """Decoded lines with their numbers, for csv.reader; undecodable lines become failures."""

    def __init__(self, report: RawReport) -> None:
        self.report = report
        self.failures: list[ParseFailure] = []
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        stream = self.report.stream
        start = stream.tell()
        encoding, skip = _encoding(stream.read(4))
        stream.seek(start + skip)
        if encoding.startswith("utf-16"):
            text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
            try:
                for self.number, line in enumerate(text, start=1):
                    yield line
            finally:
                text.detach()  # the source owns the stream and closes it
            return
        continued = False
        while chunk := stream.readline(MAX_LINE_BYTES):
            if not continued:
                self.number += 1
            continued = not chunk.endswith(b"\n")
            try:
                yield chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                where = source_name(self.report)
                self.failures.append(failure(where, self.number, chunk, f"not UTF-8: {exc}"))
                yield "\n"


def _looks_like_header(cells: list[str]) -> bool:
    """Column names: short, distinct, not numbers, no rule or code punctuation."""
    names = [cell.strip() for cell in cells]
    if len(set(names)) != len(names):
        return False
    return all(
        0 < len(name) <= 64
        and not name.replace(".", "").isdigit()
        and not _CODE_MARKS.intersection(name)
        for name in names
    )


def _row_text(row: list[str], delimiter: str) -> str:
    """The row as CSV text again (quotes restored), for the failure or alert ``raw``."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerow(row)
    return out.getvalue().removesuffix("\r\n")


class GenericCsvParser:
    """Any CSV feed, with a column mapping."""

    name: ClassVar[str] = "csv"
    priority: ClassVar[int] = 99

    def __init__(self) -> None:
        self.skipped: Counter[str] = Counter()

    def sniff(self, head: bytes) -> bool:
        """Conservative: the first lines split into the same number (≥3) of columns."""
        text = head[:4096].decode("utf-8", "ignore").lstrip("\ufeff")
        lines = [line for line in text.splitlines()[:5] if line.strip()]
        if len(lines) < 2 or lines[0].lstrip().startswith(("{", "[", "#", "<")):
            return False
        try:
            dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
        except csv.Error:
            return False
        rows = list(csv.reader(lines, dialect))
        widths = {len(row) for row in rows}
        return len(widths) == 1 and widths.pop() >= 3 and _looks_like_header(rows[0])

    def parse(self, report: RawReport) -> Iterator[Record]:
        """One Alert per data row; a ParseFailure (with its line) per bad row."""
        self.skipped = Counter()
        csv.field_size_limit(MAX_FIELD_BYTES)
        where = source_name(report)
        options = load_options(report)
        lines = _Lines(report)
        reader = csv.reader(iter(lines), delimiter=self._delimiter(report, options))
        header: list[str] | None = list(options["columns"]) if options.get("columns") else None
        comment = str(options.get("comment", "#"))
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield failure(where, reader.line_num, "", f"bad CSV row: {exc}")
                continue
            yield from lines.failures
            lines.failures.clear()
            if not row or not any(cell.strip() for cell in row):
                continue
            first = next(cell for cell in row if cell.strip()).lstrip()
            if comment and first.startswith(comment):
                self.skipped["comment line"] += 1
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                continue
            delimiter = reader.dialect.delimiter
            yield self._record(row, header, options, report, line=reader.line_num, sep=delimiter)
        yield from lines.failures

    def _delimiter(self, report: RawReport, options: Mapping[str, Any]) -> str:
        if options.get("delimiter"):
            return str(options["delimiter"])
        stream = report.stream
        start = stream.tell()
        head = stream.read(8192)
        stream.seek(start)
        text = head.decode("utf-8", "ignore").lstrip("\ufeff")
        sample = "\n".join(
            line
            for line in text.splitlines()[:20]
            if line.strip() and not line.lstrip().startswith("#")
        )
        try:
            return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            return ","

    def _record(
        self,
        row: list[str],
        header: list[str],
        options: Mapping[str, Any],
        report: RawReport,
        *,
        line: int,
        sep: str,
    ) -> Record:
        where = source_name(report)
        raw = _row_text(row, sep)
        if any("\x00" in cell for cell in row):
            return failure(where, line, raw, "NUL byte in row")
        if len(row) != len(header):
            return failure(where, line, raw, f"{len(row)} columns, the header has {len(header)}")
        record = dict(zip(header, row, strict=True))
        try:
            fields = apply_mapping(record, options)
            alert = alert_from_fields(
                fields, default_source="csv", raw=raw, default_time=report.received_at
            )
        except Exception as exc:  # one bad row never stops the file
            return failure(where, line, raw, reason_of(exc))
        return stamp(alert, report)


class GenericJsonParser:
    """Any JSON feed (NDJSON or an array of objects), with a field mapping."""

    name: ClassVar[str] = "json"
    priority: ClassVar[int] = 95

    def sniff(self, head: bytes) -> bool:
        """JSON objects or an array of objects: the last resort for JSON input."""
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return text[:1] == b"{" or text[:2].replace(b" ", b"") == b"[{" or text[:1] == b"["

    def parse(self, report: RawReport) -> Iterator[Record]:
        """One Alert per object; ParseFailure per object that cannot be mapped."""
        options = load_options(report)
        stream = report.stream
        start = stream.tell()
        first = stream.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        stream.seek(start)
        if first == b"[":
            yield from self._array(report, options)
            return
        for number, line, item in json_lines(report):
            if isinstance(item, ParseFailure):
                yield item
                continue
            raw = line.decode("utf-8", "replace")
            yield self._record(item, options, report, raw, line=number, index=None)

    def _array(self, report: RawReport, options: Mapping[str, Any]) -> Iterator[Record]:
        where = source_name(report)
        data = report.stream.read(MAX_ARRAY_BYTES + 1)
        if len(data) > MAX_ARRAY_BYTES:
            yield failure(where, 1, data[:256], "JSON array over 10 MB; send NDJSON instead")
            return
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield failure(where, None, data[:2048], f"not valid JSON: {exc}")
            return
        for index, item in enumerate(items if isinstance(items, list) else [items]):
            raw = orjson.dumps(item).decode()
            if not isinstance(item, dict):
                yield failure(where, None, raw, "element is not an object", record=index)
                continue
            yield self._record(item, options, report, raw, line=None, index=index)

    def _record(
        self,
        item: dict[str, Any],
        options: Mapping[str, Any],
        report: RawReport,
        raw: str,
        *,
        line: int | None,
        index: int | None,
    ) -> Record:
        try:
            fields = apply_mapping(flatten(item), options)
            alert = alert_from_fields(
                fields, default_source="json", raw=raw, default_time=report.received_at
            )
        except Exception as exc:  # one bad record never stops the file
            return failure(source_name(report), line, raw, reason_of(exc), record=index)
        return stamp(alert, report)
