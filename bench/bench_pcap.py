"""Benchmark: stream a >= 100,000-packet capture through PcapParser and through tshark.

The capture is SYNTHETIC-FROM-REAL: every packet is a real packet from the suricata-verify
samples in shared/data (DNS over UDP and TCP, HTTP, TLS over IPv4 and IPv6, SSH, SMB),
replayed in copies whose addresses differ (the last two bytes of every IPv4/IPv6 source
and destination are XORed with the copy number, so each copy is its own set of hosts and
flows), written with scapy's ``RawPcapWriter``. Checksums are not fixed (neither tool
checks them).

Prints one JSON object: packets, then seconds, packets/s and peak RSS for ours in-process,
ours in the sandbox, and ``tshark -T fields`` on the same file, and the ratios ours/tshark
(on wall time and on CPU time: the CPU figures move less when the machine is shared).
Usage: ``python bench/bench_pcap.py [--packets N] [--keep FILE]``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scapy.utils import RawPcapReader, RawPcapWriter

from collectors.parsers.pcap import PcapParser
from pukara.core.schema import Alert, ParseFailure, RawReport

VERIFY = Path(__file__).resolve().parents[2] / "shared" / "data" / "suricata" / "suricata-verify"
SOURCES = [
    "decode-teredo-01/input.pcap",
    "bug-130/input.pcap",
    "community-id-ipv6/input.pcap",
    "dns__task-7018-ids-dns-keywords/input.pcap",
    "output-eve-fileinfo/input.pcap",
    "bug-4903__bug-4903-04/input.pcap",
    "smb1-01/smb1.pcap",
]
DATA_LABEL = "synthetic-from-real (suricata-verify packets, addresses varied per copy)"
TSHARK_FIELDS = [
    "frame.number",
    "ip.src",
    "ip.dst",
    "dns.qry.name",
    "http.host",
    "tls.handshake.extensions_server_name",
]


def _vary(frame: bytes, copy: int) -> bytes:
    """XOR the low two bytes of both IP addresses with ``copy`` (Ethernet frames)."""
    data = bytearray(frame)
    etype = int.from_bytes(data[12:14], "big")
    if etype == 0x0800 and len(data) >= 34:
        ends = (14 + 16, 14 + 20)
    elif etype == 0x86DD and len(data) >= 54:
        ends = (14 + 24, 14 + 40)
    else:
        return frame
    for end in ends:
        data[end - 2] ^= copy >> 8 & 0xFF
        data[end - 1] ^= copy & 0xFF
    return bytes(data)


def build_capture(path: Path, packets: int) -> int:
    """Write at least ``packets`` packets; returns how many were written."""
    frames = [data for name in SOURCES for data, _meta in RawPcapReader(str(VERIFY / name))]
    writer = RawPcapWriter(str(path), linktype=1, sync=False)
    writer.write_header(None)
    written, copy, ts = 0, 0, 1_700_000_000.0
    while written < packets:
        copy += 1
        for frame in frames:
            ts += 0.00001
            writer.write_packet(_vary(frame, copy), sec=int(ts), usec=int(ts % 1 * 1e6))
            written += 1
    writer.close()
    return written


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_ours(path: Path, sandbox: bool) -> dict[str, Any]:
    """Stream the capture through PcapParser; count records."""
    start, cpu = time.perf_counter(), _cpu()
    counts = {"alerts": 0, "failures": 0}
    with path.open("rb") as stream:
        metadata = {"sandbox": sandbox, "path": str(path)}
        report = RawReport(stream=stream, source="bench", filename=path.name, metadata=metadata)
        for record in PcapParser().parse(report):
            counts["alerts" if isinstance(record, Alert) else "failures"] += isinstance(
                record, Alert | ParseFailure
            )
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "cpu_seconds": round(_cpu() - cpu, 3), **counts}


def run_tshark(path: Path) -> dict[str, Any] | None:
    """tshark -T fields over the same file; None if tshark is missing."""
    binary = shutil.which("tshark")
    if binary is None:
        return None
    command = [binary, "-r", str(path), "-T", "fields"]
    for name in TSHARK_FIELDS:
        command += ["-e", name]
    with tempfile.TemporaryFile() as out:
        start, cpu = time.perf_counter(), _cpu()
        subprocess.run(command, stdout=out, stderr=subprocess.DEVNULL, check=True)
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
        out.seek(0)
        lines = sum(1 for _ in out)
    version = subprocess.run(
        [binary, "--version"], check=False, capture_output=True, text=True
    ).stdout
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "lines": lines,
        "version": version.splitlines()[0] if version else "",
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the capture here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "synthetic-from-real.pcap"
        packets = build_capture(path, args.packets)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ours = run_ours(path, sandbox=False)
        ours["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        ours["peak_rss_mb_before_parse"] = round(rss_before / 1024, 1)
        sandboxed = run_ours(path, sandbox=True)
        sandboxed["child_peak_rss_mb"] = round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        )
        tshark = run_tshark(path)
        print(json.dumps(report(packets, path, ours, sandboxed, tshark)))


def report(
    packets: int,
    path: Path,
    ours: dict[str, Any],
    sandboxed: dict[str, Any],
    tshark: dict[str, Any] | None,
) -> dict[str, Any]:
    """The JSON object: rates on wall time and on CPU time, and ours/tshark ratios."""
    for result in (ours, sandboxed, tshark):
        if result is not None:
            result["packets_per_s"] = round(packets / result["seconds"])
            result["packets_per_cpu_s"] = round(packets / max(result["cpu_seconds"], 1e-9))
    ratios = None
    if tshark is not None:
        ratios = {
            "wall": round(ours["packets_per_s"] / tshark["packets_per_s"], 2),
            "cpu": round(ours["packets_per_cpu_s"] / tshark["packets_per_cpu_s"], 2),
        }
    return {
        "data": DATA_LABEL,
        "packets": packets,
        "file_bytes": path.stat().st_size,
        "ours_in_process": ours,
        "ours_sandboxed": sandboxed,
        "tshark": tshark,
        "tshark_missing_reason": None if tshark is not None else "tshark not on PATH",
        "ratio_in_process_to_tshark": ratios,
    }


if __name__ == "__main__":
    main()
