"""Benchmark: Pukara's Shadowserver parser against IntelMQ's ShadowserverParserBot, in-process.

The input is a CONSTRUCTED (synthetic) 100,000-row report in the layout of Shadowserver's
``scan_telnet`` report (the layout of /work/shared/data/shadowserver/scan_telnet.csv):
unique IPs from the 198.18.0.0/15 benchmarking range, unique hostnames, one timestamp per
second of a day. IntelMQ 3.5.0 ships only a test schema (no network here to download the
real one); its ``test_telnet`` report has exactly the ``scan_telnet`` columns, so IntelMQ
parses the same bytes as ``test_telnet`` in ``test_mode``, driven the way IntelMQ's own test
suite drives it (``intelmq.lib.test.BotTestCase`` with the in-memory ``Pythonlist`` pipeline).
Only the parsing is timed (``bot.start``), not the test-case assertions.

Prints one JSON object. Usage: ``.venv/bin/python bench/bench_shadowserver.py [rows]``.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import time
import unittest
from unittest import mock

from collectors.parsers.shadowserver import ShadowserverParser
from pukara.core.schema import Alert, RawReport

HEADER = (
    '"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city",'
    '"naics","sic","banner"'
)
ASNS = (6147, 12252, 27843, 3132, 21575, 262210, 61468, 28032)


def synthetic_report(rows: int) -> bytes:
    """A constructed scan_telnet report with ``rows`` rows."""
    lines = [HEADER]
    for number in range(rows):
        third, fourth = divmod(number, 256)
        ip = f"198.{18 + third // 256}.{third % 256}.{fourth}"
        seconds = number % 86400
        stamp = f"2026-11-22 {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        host = f"host-{third}-{fourth}.synthetic.example.net"
        asn = ASNS[number % len(ASNS)]
        lines.append(
            f'"{stamp}","{ip}","tcp",23,"{host}","telnet",{asn},"PE","LIMA","LIMA",0,0,'
            f'"|Login: synthetic row {number}"'
        )
    return ("\n".join(lines) + "\n").encode()


def run_pukara(data: bytes) -> tuple[int, float]:
    """Alerts produced and seconds taken by our parser."""
    report = RawReport(
        stream=io.BytesIO(data),
        source="shadowserver",
        filename="2026-11-22-scan_telnet-synthetic-geo.csv",
    )
    start = time.perf_counter()
    alerts = sum(1 for item in ShadowserverParser().parse(report) if isinstance(item, Alert))
    return alerts, time.perf_counter() - start


def run_intelmq(data: bytes) -> tuple[int, float]:
    """Events produced and seconds taken by IntelMQ's ShadowserverParserBot."""
    import intelmq.lib.test as intelmq_test
    from intelmq.bots.parsers.shadowserver.parser import ShadowserverParserBot

    class Harness(intelmq_test.BotTestCase, unittest.TestCase):  # type: ignore[misc]
        @classmethod
        def set_bot(cls) -> None:
            cls.bot_reference = ShadowserverParserBot
            cls.sysconfig = {"logging_level": "WARNING"}

        def runTest(self) -> None:  # noqa: N802 - unittest's name
            """Unused: the harness only borrows BotTestCase's set-up."""

    # The container runs as root; IntelMQ's refusal to run as root is a deployment guard,
    # not part of parsing, so it is switched off for this in-process measurement.
    with mock.patch("intelmq.lib.utils.drop_privileges", return_value=True):
        Harness.setUpClass()
    harness = Harness()
    harness.input_message = {
        "__type": "Report",
        "feed.name": "Test-Accessible-Telnet",
        "raw": base64.b64encode(data).decode(),
        "time.observation": "2026-11-23T00:00:00+00:00",
        "extra.file_name": "2026-11-22-test_telnet-synthetic-geo.csv",
    }
    harness.prepare_bot(parameters={"test_mode": True})
    with (
        mock.patch("intelmq.lib.utils.load_configuration", new=harness.mocked_config),
        mock.patch("intelmq.lib.utils.log", harness.get_mocked_logger(harness.logger)),
    ):
        start = time.perf_counter()
        harness.bot.start(
            error_on_pipeline=False,
            source_pipeline=harness.pipe,
            destination_pipeline=harness.pipe,
        )
        elapsed = time.perf_counter() - start
        harness.bot.stop(exitcode=0)
    return len(harness.get_output_queue()), elapsed


def main() -> None:
    """Build the report, parse it both ways, print one JSON object."""
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data = synthetic_report(rows)
    ours, ours_seconds = run_pukara(data)
    theirs, theirs_seconds = run_intelmq(data)
    ours_rate = ours / ours_seconds
    theirs_rate = theirs / theirs_seconds if theirs_seconds else 0.0
    result = {
        "benchmark": "shadowserver_parse",
        "input": f"constructed scan_telnet report, {rows} rows, {len(data)} bytes",
        "pukara_alerts": ours,
        "pukara_seconds": round(ours_seconds, 3),
        "pukara_rows_per_s": round(ours_rate),
        "intelmq_events": theirs,
        "intelmq_seconds": round(theirs_seconds, 3),
        "intelmq_rows_per_s": round(theirs_rate),
        "ratio": round(ours_rate / theirs_rate, 2) if theirs_rate else None,
        "target_ratio": 10,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
