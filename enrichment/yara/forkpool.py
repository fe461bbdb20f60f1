"""Scan workers forked from the process that holds the loaded rules.

A forked worker inherits the rules already in memory (libyara's, or yara-x's JIT-compiled
code), so it starts in a few milliseconds instead of loading and, for yara-x, re-compiling
them (~0.1 s per worker). The rules are the ones the parent loaded from our cache (F2).

Forking is only done when it is safe (:func:`fork_is_safe`): this process runs one thread.
Another thread would not exist in the child, and whatever it held would stay held there: an
engine's thread (yara-x's timeout clock is a thread it starts once per process, on its first
scan with a timeout, so a child forked after an in-process yara-x scan would never time out,
F3), or a lock of glibc (user lookups for the ``owner`` external) or of a Python object (a
progress bar's stream). When it is not safe, the caller uses the forkserver.

Each worker closes every inherited descriptor but its socket, ignores SIGINT (the parent kills
it when done) and caps its address space at what it inherited (shared with the parent, copied
only when written) plus ``ScanLimits.memory_bytes`` (F3).
Results come back as JSON, never pickle: a worker that a hostile file took over can lie about
matches but cannot run code in the parent; the parent keeps its own list of the paths.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, Pipe, wait
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enrichment.yara.scanner import Matcher, ScanLimits, ScanResult

#: chunks sent ahead to each worker, so it never waits for the parent between two chunks
IN_FLIGHT = 2


def fork_is_safe() -> bool:
    """True when this process runs a single thread (no engine's, no lock held elsewhere)."""
    try:
        threads = len(os.listdir("/proc/self/task"))  # noqa: PTH208 - a count, no Paths
    except OSError:
        return False
    return threads == 1


class ForkedPool:
    """``processes`` workers forked now, scanning with ``matcher`` until :meth:`close`."""

    def __init__(self, matcher: Matcher, limits: ScanLimits, processes: int) -> None:
        reap_stopped()
        self.workers: dict[Connection, int] = {}
        try:
            for _ in range(processes):
                parent_end, child_end = Pipe(duplex=True)
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the child, which leaves by os._exit
                    _child(child_end, matcher, limits)
                child_end.close()
                self.workers[parent_end] = pid
        except OSError:  # no process or descriptor left: the workers made so far go too
            self.close()
            raise
        self.size = processes
        #: False while a :meth:`scan` is under way or was left before its end
        self.clean = True
        self._starting = set(self.workers)

    def wait_ready(self) -> None:
        """Block until every worker has closed what it inherited and capped its memory."""
        for conn in list(self._starting):
            self._starting.discard(conn)
            try:
                conn.recv_bytes()
            except (EOFError, OSError):
                self._forget(conn)

    @property
    def broken(self) -> bool:
        """True once every worker is gone."""
        return not self.workers

    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        return list(self.workers.values())

    def scan(self, chunks: Sequence[list[str]]) -> Iterator[ScanResult]:
        """Results of every file in ``chunks`` (completion order); a dead worker's files get
        ``worker crashed``, the others go on with the workers left.

        Stopping the iteration early leaves answers in the sockets: the caller must then
        :meth:`close` this pool rather than use it again (:attr:`clean` tells).
        """
        from enrichment.yara.scanner import ScanResult

        self.wait_ready()
        self.clean = False
        todo = deque(chunks)
        sent: dict[Connection, deque[list[str]]] = {conn: deque() for conn in self.workers}
        lost: list[list[str]] = []

        def feed(conn: Connection) -> None:
            while todo and len(sent[conn]) < IN_FLIGHT:
                chunk = todo.popleft()
                try:
                    conn.send_bytes(json.dumps(chunk).encode())
                except OSError:  # the worker died: its chunks are lost, the others go on
                    todo.appendleft(chunk)
                    lost.extend(sent.pop(conn))
                    self._forget(conn)
                    return
                sent[conn].append(chunk)

        for conn in list(sent):
            feed(conn)
        while True:
            yield from (ScanResult(p, error="worker crashed") for c in lost for p in c)
            lost.clear()
            busy = [conn for conn, chunks in sent.items() if chunks]
            if not busy:  # done, or no worker left for what remains
                break
            for ready in wait(busy):
                conn = ready  # type: ignore[assignment]
                try:
                    answer = conn.recv_bytes()
                except (EOFError, OSError):
                    lost.extend(sent.pop(conn))
                    self._forget(conn)
                    continue
                yield from _decode(answer, sent[conn].popleft())
                feed(conn)
        yield from (ScanResult(p, error="worker crashed") for c in todo for p in c)
        self.clean = True

    def _forget(self, conn: Connection) -> None:
        pid = self.workers.pop(conn)
        conn.close()
        _kill(pid)
        _reap(pid)

    def close(self) -> None:
        """Stop the workers (killed: they hold nothing to save) without waiting for their exit
        (~3 ms each); :func:`reap_stopped` reaps them, here and at the next pool."""
        for conn, pid in self.workers.items():
            conn.close()
            _kill(pid)
            _STOPPED.add(pid)
        self.workers.clear()
        reap_stopped()


#: seconds a payload child may take beyond the per-payload timeouts before it is killed
PAYLOAD_SLACK = 30.0


def scan_payloads_forked(matcher: Matcher, limits: ScanLimits,
                         payloads: Sequence[tuple[bytes, str]]) -> list[ScanResult]:
    """Scan in-memory payloads (e-mail attachments, captured data) in one child forked for
    them: it inherits the rules and the payloads, closes the parent's descriptors, caps its
    address space and answers in JSON (F3). A child that dies or overruns gives each
    payload an error result; the parent never runs the engine."""
    from enrichment.yara.scanner import ScanResult, scan_data

    names = [name for _data, name in payloads]
    reap_stopped()
    parent_end, child_end = Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which leaves by os._exit
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _close_inherited(child_end.fileno())
            _cap_address_space(limits.memory_bytes)
            child_end.send_bytes(_encode([scan_data(matcher, data, name, limits)
                                          for data, name in payloads]))
        except BaseException:  # nothing may unwind into the parent's code in this process
            code = 1
        finally:
            os._exit(code)
    child_end.close()
    try:
        if not parent_end.poll(limits.timeout * len(payloads) + PAYLOAD_SLACK):
            return [ScanResult(name, error="timeout") for name in names]
        return list(_decode(parent_end.recv_bytes(), names))
    except (EOFError, OSError):
        return [ScanResult(name, error="worker crashed") for name in names]
    finally:
        parent_end.close()
        _kill(pid)
        _reap(pid)


#: workers killed by :meth:`ForkedPool.close` and not reaped yet
_STOPPED: set[int] = set()


def reap_stopped(*, wait: bool = False) -> None:
    """Reap the stopped workers that have exited; with ``wait``, wait for all of them."""
    for pid in list(_STOPPED):
        try:
            done, _status = os.waitpid(pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:  # reaped by someone else
            done = pid
        if done:
            _STOPPED.discard(pid)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _child(conn: Connection, matcher: Matcher, limits: ScanLimits) -> None:  # pragma: no cover
    """The worker: serve chunks of paths until the parent closes the socket."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _close_inherited(conn.fileno())
        _cap_address_space(limits.memory_bytes)
        conn.send_bytes(b"ready")
        _serve(conn, matcher, limits)
    except BaseException:  # nothing may unwind into the parent's code in this process
        code = 1
    finally:
        os._exit(code)


def _close_inherited(keep: int) -> None:
    """Close every descriptor but stdio and ``keep`` (the parent's files, sockets, database)."""
    for name in os.listdir("/proc/self/fd"):  # noqa: PTH208 - numbers, not files
        descriptor = int(name)
        if descriptor > 2 and descriptor != keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed already
                os.close(descriptor)


def _cap_address_space(memory_bytes: int) -> None:
    """RLIMIT_AS: the inherited mappings (shared with the parent) plus ``memory_bytes``."""
    with open("/proc/self/statm", "rb") as handle:  # noqa: PTH123 - one read, no Path needed
        inherited = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = inherited + memory_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(hard, cap)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _serve(conn: Connection, matcher: Matcher, limits: ScanLimits) -> None:  # pragma: no cover
    from enrichment.yara.scanner import scan_path

    while True:
        try:
            paths = json.loads(conn.recv_bytes())
        except EOFError:
            return
        conn.send_bytes(_encode([scan_path(matcher, path, limits) for path in paths]))


def _encode(results: list[ScanResult]) -> bytes:
    """Results as JSON lists, in the order of the chunk (the parent adds the paths back)."""
    return json.dumps(
        [
            [
                r.error,
                [
                    [
                        m.rule,
                        m.namespace,
                        m.tags,
                        m.meta,
                        [[s.identifier, s.offset, s.data] for s in m.strings],
                    ]
                    for m in r.matches
                ],
            ]
            for r in results
        ]
    ).encode()


def _decode(answer: bytes, chunk: list[str]) -> Iterator[ScanResult]:
    """The results of ``chunk`` from a worker's JSON; an answer that does not fit fails them."""
    from enrichment.yara.scanner import RuleMatch, ScanResult, StringMatch

    try:
        rows: list[Any] = json.loads(answer)
        if len(rows) != len(chunk):
            raise ValueError("wrong number of results")
        results = [
            ScanResult(
                path,
                [
                    RuleMatch(
                        str(rule),
                        str(ns),
                        list(tags),
                        dict(meta),
                        [StringMatch(str(i), int(o), str(d)) for i, o, d in strings],
                    )
                    for rule, ns, tags, meta, strings in matches
                ],
                None if error is None else str(error),
            )
            for path, (error, matches) in zip(chunk, rows, strict=True)
        ]
    except (ValueError, TypeError):
        results = [ScanResult(path, error="worker sent a malformed answer") for path in chunk]
    yield from results
