"""Parse an untrusted capture in a child process with CPU, memory and wall-clock limits.

The parent starts ``python -m collectors.parsers.pcap_sandbox``, sends it one JSON request
on stdin, and reads records back as JSON lines (``{"t": kind, "d": fields}``; attachment
bytes in base64), rebuilding the pydantic models. The child sets its own limits with
``resource.setrlimit`` once its imports are done: address space (``RLIMIT_AS``) and CPU
seconds (``RLIMIT_CPU``; the soft limit raises SIGXCPU, which the child turns into an
orderly stop, the hard limit a few seconds later kills it). The parent enforces wall time:
SIGTERM (an orderly stop too), then SIGKILL.

An orderly stop still emits the alerts of what was read, after a ParseFailure
``unparseable: <limit>``; a child that dies instead leaves the records it already sent,
and the parent adds the ``unparseable`` failure.
"""

from __future__ import annotations

import base64
import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import ValidationError

from collectors.parsers.pcap_alerts import Origin, observable
from collectors.parsers.pcap_capture import CaptureLimits
from pukara.core.observables import ObservableType
from pukara.core.schema import Alert, Observable, ParseFailure, Record

MEMORY_EXIT = 71
GRACE_SECONDS = 5.0
MAX_LINE = 64 * 1024 * 1024


@dataclass
class SandboxLimits:
    """CPU seconds, address space and wall time of the child."""

    cpu_seconds: int = 120
    memory_mb: int = 2048
    wall_seconds: float = 300.0

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> SandboxLimits:
        """``sandbox_cpu_seconds``, ``sandbox_memory_mb``, ``sandbox_wall_seconds``."""
        values: dict[str, Any] = {}
        for name in ("cpu_seconds", "memory_mb", "wall_seconds"):
            raw = metadata.get(f"sandbox_{name}")
            if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0:
                values[name] = type(getattr(cls, name))(raw)
        return cls(**values)


class _Stop(BaseException):
    """The child was told to stop: a CPU or wall-clock limit (not an Exception: parsers
    catch those)."""


def encode(record: Record) -> bytes:
    """One record as a JSON line."""
    data = record.model_dump()
    for attachment in data.get("attachments") or []:
        attachment["data"] = base64.b64encode(attachment["data"]).decode()
    return orjson.dumps({"t": type(record).__name__, "d": data}) + b"\n"


def decode_record(line: bytes) -> Record:
    """Rebuild a record from one JSON line."""
    message = orjson.loads(line)
    data = message["d"]
    if message["t"] == "ParseFailure":
        return ParseFailure.model_validate(data)
    for attachment in data.get("attachments") or []:
        attachment["data"] = base64.b64decode(attachment["data"])
    data["observables"] = [_observable(item) for item in data.get("observables") or []]
    return Alert.model_validate(data)


def _observable(item: dict[str, Any]) -> Observable | dict[str, Any]:
    """A validated Observable from the shared cache (the same IPs recur across alerts);
    the raw dict if it does not validate, so that the Alert's validation reports it."""
    try:
        kind = ObservableType(item["type"])
    except (KeyError, ValueError):
        return item
    return observable(kind, item.get("value", ""), item.get("role")) or item


def _stderr_tail(handle: IO[bytes]) -> str:
    handle.seek(0, os.SEEK_END)
    handle.seek(max(0, handle.tell() - 400))
    return handle.read().decode("utf-8", "replace").strip().replace("\n", " | ")


def _verdict(code: int, timed_out: bool, limits: SandboxLimits, stderr: IO[bytes]) -> str:
    if timed_out:
        return f"unparseable: wall-clock limit ({limits.wall_seconds:g} s)"
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"unparseable: cpu limit ({limits.cpu_seconds} s)"
    tail = _stderr_tail(stderr)
    if code == MEMORY_EXIT or "memory allocation" in tail or "MemoryError" in tail:
        return f"unparseable: memory limit ({limits.memory_mb} MB)"
    return f"unparseable: parser process exited with code {code}: {tail}"


class _Watchdog:
    """Wall-clock limit: SIGTERM at the limit (an orderly stop), SIGKILL after a grace."""

    def __init__(self, child: subprocess.Popen[bytes], seconds: float) -> None:
        self.child = child
        self.fired = threading.Event()
        self.timers = [
            threading.Timer(seconds, self._signal, (signal.SIGTERM,)),
            threading.Timer(seconds + GRACE_SECONDS, self._signal, (signal.SIGKILL,)),
        ]
        for timer in self.timers:
            timer.daemon = True
            timer.start()

    def _signal(self, sig: int) -> None:
        self.fired.set()
        with contextlib.suppress(ProcessLookupError):
            self.child.send_signal(sig)

    def cancel(self) -> None:
        """Stop the timers; kill the child if it is still running."""
        for timer in self.timers:
            timer.cancel()
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()


def _start_child(stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen(
        [sys.executable, "-m", "collectors.parsers.pcap_sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
    )


def _records(lines: IO[bytes], where: str) -> Iterator[Record]:
    while line := lines.readline(MAX_LINE):
        try:
            yield decode_record(line)
        except (orjson.JSONDecodeError, ValidationError, KeyError, ValueError) as exc:
            yield ParseFailure(
                source=where,
                raw=line[:256].decode("utf-8", "replace"),
                reason=f"sandbox sent an unreadable record: {exc}",
            )


def run_sandboxed(
    path: str, limits: SandboxLimits, origin: Origin, capture_limits: CaptureLimits
) -> Iterator[Record]:
    """Parse ``path`` in a limited child; stream its records back."""
    request = orjson.dumps(
        {
            "path": path,
            "limits": asdict(limits),
            "capture": asdict(capture_limits),
            "origin": asdict(origin),
        }
    )
    where = origin.filename or path
    with tempfile.TemporaryFile() as stderr:
        child = _start_child(stderr)
        watchdog = _Watchdog(child, limits.wall_seconds)
        reported = False
        try:
            if child.stdin is None or child.stdout is None:
                raise RuntimeError("child started without pipes")
            with contextlib.suppress(BrokenPipeError):
                child.stdin.write(request)
                child.stdin.close()
            for record in _records(child.stdout, where):
                reported |= isinstance(record, ParseFailure) and record.reason.startswith(
                    "unparseable"
                )
                yield record
            code = child.wait()
        finally:
            watchdog.cancel()
        if code != 0 and not reported:
            reason = _verdict(code, watchdog.fired.is_set(), limits, stderr)
            yield ParseFailure(source=where, reason=reason)


def _limit_self(limits: dict[str, Any]) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime) + 1 + int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + int(GRACE_SECONDS)))
    memory = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _raise_stop(signum: int, _frame: Any) -> None:
    raise _Stop("cpu limit" if signum == signal.SIGXCPU else "wall-clock limit")


def child_main() -> int:
    """The child: read the request, limit itself, parse, write JSON lines."""
    from collectors.parsers.pcap import feed_capture
    from collectors.parsers.pcap_alerts import capture_alerts
    from collectors.parsers.pcap_capture import Capture

    request = orjson.loads(sys.stdin.buffer.read())
    origin = Origin(
        **{
            **request["origin"],
            "received_at": datetime.fromisoformat(request["origin"]["received_at"]),
        }
    )
    capture = Capture(CaptureLimits(**request["capture"]))
    out = sys.stdout.buffer
    where = origin.filename or request["path"]
    signal.signal(signal.SIGXCPU, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    _limit_self(request["limits"])
    try:
        with Path(request["path"]).open("rb") as stream:
            for failure in feed_capture(stream, where, capture):
                out.write(encode(failure))
    except _Stop as stop:
        key = "cpu_seconds" if "cpu" in str(stop) else "wall_seconds"
        detail = f" ({request['limits'][key]:g} s)"
        out.write(encode(ParseFailure(source=where, reason=f"unparseable: {stop}{detail}")))
    except MemoryError:
        out.flush()
        os._exit(MEMORY_EXIT)
    except OSError as exc:
        out.write(encode(ParseFailure(source=where, reason=f"unreadable: {exc}")))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    for alert in capture_alerts(capture, origin):
        out.write(encode(alert))
    out.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(child_main())
    except MemoryError:
        os._exit(MEMORY_EXIT)
