"""Scan files and in-memory payloads with compiled YARA rules.

Submitted values (file name, path, type, owner) reach rules only as ``externals`` (SECURITY F6).
Batches run in worker processes that cap their address space with ``RLIMIT_AS`` (SECURITY F3):
forked from this process, inheriting the rules it loaded from our cache, when that is safe
(:mod:`enrichment.yara.forkpool`), else started by the forkserver and loading the rules from our
cache themselves. A rule that runs past the per-file timeout gives a result with
``error="timeout"``, never an exception.
"""

from __future__ import annotations

import errno
import os
import resource
import stat
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yara

from enrichment.yara.cache import load_compiled
from enrichment.yara.compiler import CompiledRules
from enrichment.yara.externals import HEAD_BYTES, escape_bytes, externals_for, owner_name
from enrichment.yara.forkpool import ForkedPool, fork_is_safe, scan_payloads_forked
from enrichment.yara.isolate import forkserver_context

if TYPE_CHECKING:  # pydantic stays out of the scan workers' start-up
    from pukara.core.schema import Hit


@dataclass(frozen=True)
class ScanLimits:
    """Per-file caps: seconds, bytes of input, address space of a worker, evidence kept."""

    timeout: int = 60
    max_file_bytes: int = 256 * 1024 * 1024
    memory_bytes: int = 3 * 1024 * 1024 * 1024
    max_instances: int = 4
    max_data_bytes: int = 64


@dataclass(frozen=True)
class StringMatch:
    """One matched string instance; ``data`` is truncated and escaped."""

    identifier: str
    offset: int
    data: str


@dataclass(frozen=True)
class RuleMatch:
    """One rule that matched."""

    rule: str
    namespace: str
    tags: list[str]
    meta: dict[str, Any]
    strings: list[StringMatch] = field(default_factory=list)

    def to_hit(self, observable: str | None = None) -> Hit:
        """The kernel's ``Hit`` for this match (kind ``yara``)."""
        from pukara.core.schema import Hit

        return Hit(
            kind="yara",
            observable=observable,
            source="yara",
            rule=self.rule,
            namespace=self.namespace,
            tags=list(self.tags),
            meta=dict(self.meta),
        )


@dataclass
class ScanResult:
    """The matches of one file or payload, or the reason it was not scanned."""

    path: str
    matches: list[RuleMatch] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``pukara scan --json``."""
        document: dict[str, Any] = {"path": self.path, "matches": [asdict(m) for m in self.matches]}
        if self.error is not None:
            document["error"] = self.error
        return document


class Matcher(Protocol):
    """What a worker scans with: one engine's loaded rules."""

    def match(self, data: bytes, externals: dict[str, str]) -> list[RuleMatch]:
        """Matches of ``data``; raises the builtin TimeoutError on timeout."""
        ...

    def match_fd(self, fd: int, externals: dict[str, str]) -> list[RuleMatch]:
        """Matches of the open regular file ``fd`` (the engine maps it, no copy)."""
        ...


class YaraMatcher:
    """yara-python rules with the limits applied."""

    def __init__(self, rules: yara.Rules, limits: ScanLimits) -> None:
        self.rules = rules
        self.limits = limits

    def match(self, data: bytes, externals: dict[str, str]) -> list[RuleMatch]:
        """Run the rules; ``yara.TimeoutError`` becomes the builtin ``TimeoutError``."""
        try:
            found = self.rules.match(data=data, externals=externals, timeout=self.limits.timeout)
        except yara.TimeoutError as exc:
            raise TimeoutError from exc
        return [self._convert(m) for m in found]

    def match_fd(self, fd: int, externals: dict[str, str]) -> list[RuleMatch]:
        """Let libyara map the file behind ``fd`` (the inode we opened and checked)."""
        timeout = self.limits.timeout
        try:
            found = self.rules.match(filepath=fd_path(fd), externals=externals, timeout=timeout)
        except yara.TimeoutError as exc:
            raise TimeoutError from exc
        return [self._convert(m) for m in found]

    def _convert(self, found: yara.Match) -> RuleMatch:
        keep = self.limits.max_data_bytes
        strings = [
            StringMatch(s.identifier, i.offset, escape_bytes(i.matched_data, keep))
            for s in found.strings
            for i in s.instances[: self.limits.max_instances]
        ]
        return RuleMatch(found.rule, found.namespace, list(found.tags), dict(found.meta), strings)


def fd_path(fd: int) -> str:
    """A path that reopens exactly the file behind ``fd`` (no swap between check and scan)."""
    return f"/proc/self/fd/{fd}"


_MAP_FILES = Path("/proc/self/fd").is_dir()


def scan_path(matcher: Matcher, path: str, limits: ScanLimits) -> ScanResult:
    """Scan one file; unreadable, oversized and timed-out files become results with an error.

    The file is opened once and checked (regular, under the size cap); the engine then maps
    that same open file through ``/proc/self/fd`` instead of a copy in Python memory.
    """
    try:
        # O_NONBLOCK: a FIFO must not hang the worker before fstat can refuse it
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return _unreadable(path, exc)
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            return ScanResult(path, error=f"unreadable: {os.strerror(errno.EISDIR)}")
        if not stat.S_ISREG(info.st_mode):
            return ScanResult(path, error="not a regular file")
        if info.st_size > limits.max_file_bytes:
            return ScanResult(path, error=_too_large(info.st_size, limits))
        if not _MAP_FILES:
            with open(descriptor, "rb", closefd=False) as handle:
                data = handle.read(limits.max_file_bytes + 1)
            return _run(matcher, data, path, externals_for(path, data, owner_name(info.st_uid)))
        head = os.pread(descriptor, HEAD_BYTES, 0)
        externals = externals_for(path, head, owner_name(info.st_uid))
        return _run_fd(matcher, descriptor, path, externals)
    except OSError as exc:
        return _unreadable(path, exc)
    finally:
        os.close(descriptor)


def _unreadable(path: str, exc: OSError) -> ScanResult:
    return ScanResult(path, error=f"unreadable: {exc.strerror or exc}")


def _run_fd(matcher: Matcher, fd: int, name: str, externals: dict[str, str]) -> ScanResult:
    try:
        return ScanResult(name, matcher.match_fd(fd, externals))
    except TimeoutError:
        return ScanResult(name, error="timeout")
    except Exception as exc:  # any engine failure is this file's result
        return ScanResult(name, error=f"scan failed: {str(exc).replace(fd_path(fd), name)}")


def scan_data(matcher: Matcher, data: bytes, name: str, limits: ScanLimits) -> ScanResult:
    """Scan an in-memory payload labelled ``name`` (pcap payload, e-mail attachment)."""
    if len(data) > limits.max_file_bytes:
        return ScanResult(name, error=_too_large(len(data), limits))
    return _run(matcher, data, name, externals_for(name, data))


def _too_large(size: int, limits: ScanLimits) -> str:
    return f"too large: {size} bytes > {limits.max_file_bytes}"


def _run(matcher: Matcher, data: bytes, name: str, externals: dict[str, str]) -> ScanResult:
    try:
        return ScanResult(name, matcher.match(data, externals))
    except TimeoutError:
        return ScanResult(name, error="timeout")
    except Exception as exc:  # any engine failure is this payload's result
        return ScanResult(name, error=f"scan failed: {exc}")


@dataclass(frozen=True)
class WorkerSpec:
    """What a pool worker needs to build its matcher (picklable; rules come from our cache)."""

    engine: str
    cache_path: str
    cache_dir: str
    limits: ScanLimits
    fallback_cache_path: str | None = None


_WORKER: dict[str, Any] = {}


def build_matcher(spec: WorkerSpec) -> Matcher:
    """Load the compiled rules named by ``spec`` (only from our cache, SECURITY F2)."""
    if spec.engine == "yara-x":
        from enrichment.yara.yarax import build_yarax_matcher

        matcher: Matcher = build_yarax_matcher(spec)
        return matcher
    rules = load_compiled(Path(spec.cache_path), Path(spec.cache_dir))
    return YaraMatcher(rules, spec.limits)


def _init_worker(spec: WorkerSpec) -> None:
    """Cap the address space (SECURITY F3) and load the rules once per worker."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = spec.limits.memory_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(hard, cap)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    _WORKER["matcher"] = build_matcher(spec)
    _WORKER["limits"] = spec.limits


def _scan_chunk(paths: Sequence[str]) -> list[ScanResult]:
    matcher: Matcher = _WORKER["matcher"]
    limits: ScanLimits = _WORKER["limits"]
    return [scan_path(matcher, path, limits) for path in paths]


def _scan_payloads(payloads: Sequence[tuple[bytes, str]]) -> list[ScanResult]:
    matcher: Matcher = _WORKER["matcher"]
    limits: ScanLimits = _WORKER["limits"]
    return [scan_data(matcher, data, name, limits) for data, name in payloads]


class _ServerPool:
    """Workers started by the forkserver that load the rules from our cache themselves.

    Used when forking this process is not safe (:func:`fork_is_safe`).
    """

    def __init__(self, spec: WorkerSpec, processes: int) -> None:
        self.executor = ProcessPoolExecutor(
            processes,
            mp_context=forkserver_context(),
            initializer=_init_worker,
            initargs=(spec,),
        )
        self.size = processes
        self.clean = True
        # the workers start and load their rules while the caller sizes the files
        self._ready = [self.executor.submit(_ready) for _ in range(processes)]

    @property
    def broken(self) -> bool:
        """True once a worker died (the executor then refuses work)."""
        return bool(getattr(self.executor, "_broken", False))

    def wait_ready(self) -> None:
        """Block until every worker has loaded its rules."""
        for ready in self._ready:
            ready.result()

    def pids(self) -> list[int]:
        """The process ids of the workers."""
        processes = getattr(self.executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None]

    def scan(self, chunks: Sequence[list[str]]) -> Iterator[ScanResult]:
        """Results of every file in ``chunks``, in completion order."""
        self.clean = False
        yield from _collect(self.executor, chunks)
        self.clean = True

    def scan_payloads(self, payloads: Sequence[tuple[bytes, str]]) -> list[ScanResult]:
        """Results of in-memory payloads, scanned by one worker."""
        try:
            return self.executor.submit(_scan_payloads, payloads).result()
        except BrokenProcessPool:
            return [ScanResult(name, error="worker crashed") for _data, name in payloads]

    def close(self) -> None:
        """Stop the workers without waiting for them to exit."""
        self.executor.shutdown(wait=False, cancel_futures=True)


class _Pool(Protocol):
    size: int
    clean: bool

    @property
    def broken(self) -> bool: ...

    def wait_ready(self) -> None: ...

    def pids(self) -> list[int]: ...

    def scan(self, chunks: Sequence[list[str]]) -> Iterator[ScanResult]: ...

    def close(self) -> None: ...


class Scanner:
    """Scans with one set of compiled rules, in-process or across a worker pool."""

    engine = "yara"

    def __init__(self, compiled: CompiledRules, limits: ScanLimits | None = None) -> None:
        self.compiled = compiled
        self.limits = limits or ScanLimits()
        self._matcher: Matcher = YaraMatcher(compiled.rules, self.limits)
        self._pool: _Pool | None = None

    def worker_spec(self) -> WorkerSpec:
        """The picklable description workers load the rules from."""
        cache_path, cache_dir = str(self.compiled.cache_path), str(self.compiled.cache_dir)
        return WorkerSpec(self.engine, cache_path, cache_dir, self.limits)

    def scan_file(self, path: str | Path) -> ScanResult:
        """Scan one file in this process (timeout applies; no memory cap)."""
        return scan_path(self._matcher, str(path), self.limits)

    def scan_bytes(self, data: bytes, name: str) -> ScanResult:
        """Scan an in-memory payload in this process (timeout applies; no memory cap)."""
        return scan_data(self._matcher, data, name, self.limits)

    def scan_payloads(self, payloads: Sequence[tuple[bytes, str]]) -> list[ScanResult]:
        """Scan in-memory payloads (data, name) in a child process with the memory cap and
        timeouts (SECURITY F3): forked from this process when that is safe, else a
        forkserver worker that loads the rules from our cache. Results in input order."""
        if not payloads:
            return []
        if fork_is_safe():
            return scan_payloads_forked(self._matcher, self.limits, payloads)
        pool = _ServerPool(self.worker_spec(), 1)
        try:
            return pool.scan_payloads(payloads)
        finally:
            pool.close()

    def start(self, processes: int = 2) -> Scanner:
        """Keep a pool of ``processes`` workers up (rules loaded once) until :meth:`close`."""
        if self._pool is None:
            self._pool = self._new_pool(processes)
            self._pool.wait_ready()
        return self

    def worker_pids(self) -> list[int]:
        """The process ids of the pool of :meth:`start` (empty without one)."""
        return self._pool.pids() if self._pool is not None else []

    def close(self) -> None:
        """Stop the pool started by :meth:`start`, if any."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Scanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_pool(self, processes: int) -> _Pool:
        """Workers forked from this process when that is safe, else forkserver workers."""
        if fork_is_safe():
            return ForkedPool(self._matcher, self.limits, processes)
        return _ServerPool(self.worker_spec(), processes)

    def scan_paths(
        self, paths: Iterable[str | Path], *, processes: int = 2, chunk_size: int | None = None
    ) -> Iterator[ScanResult]:
        """Scan files across ``processes`` workers; results in completion order.

        Uses the pool of :meth:`start` when there is one, else a pool for this call, started
        first (forked workers inherit the loaded rules; forkserver workers load them while
        the files are sized). Files go out largest first in chunks that shrink toward the
        end (:func:`plan_chunks`), so no worker is left alone with a big chunk;
        ``chunk_size`` caps the files per chunk.
        """
        todo = [str(p) for p in paths]
        if not todo:
            return
        pool = self._pool or self._new_pool(max(1, min(processes, len(todo))))
        try:
            yield from pool.scan(plan_chunks(todo, pool.size, chunk_size or 256))
        finally:
            if pool is not self._pool:
                pool.close()
            elif pool.broken or not pool.clean:  # a dead worker, or answers left unread
                self.close()


def _ready() -> bool:
    return "matcher" in _WORKER


def _collect(pool: ProcessPoolExecutor, chunks: Sequence[list[str]]) -> Iterator[ScanResult]:
    """Submit the chunks and yield results; a crashed worker's files get ``worker crashed``."""
    futures = {}
    try:
        for chunk in chunks:
            futures[pool.submit(_scan_chunk, chunk)] = chunk
    except BrokenProcessPool:
        pass
    for future in as_completed(futures):
        try:
            results = future.result()
        except BrokenProcessPool:
            results = [ScanResult(p, error="worker crashed") for p in futures[future]]
        yield from results
    unsent = chunks[len(futures) :]
    yield from (ScanResult(p, error="worker crashed") for chunk in unsent for p in chunk)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size  # noqa: PTH116 - plain string paths
    except OSError:
        return 0


#: the fixed cost of one scan in bytes of scanning: ~0.3 ms with libyara, ~0.1-0.25 ms with
#: yara-x (both load every imported module per file), ~6 and ~2 ms per MiB of random data
PER_FILE_BYTES = 64 << 10


def plan_chunks(paths: Sequence[str], workers: int, max_files: int) -> list[list[str]]:
    """Largest files first, in chunks that shrink as the work runs out (guided scheduling).

    Each chunk holds about 1/(4·workers) of the work not yet planned (1 MiB to 64 MiB), at
    most ``max_files`` files: the first chunks are few and large, the last ones about 1 MiB,
    so no worker is left alone with a big chunk at the end. A file weighs its size plus
    :data:`PER_FILE_BYTES`, what a scan costs whatever the size (engine set-up, modules): a
    tail of 256 tiny files is 50 ms of work, not the few bytes it holds.
    """
    sized = sorted(((_size(p) + PER_FILE_BYTES, p) for p in paths), reverse=True)
    remaining = sum(size for size, _ in sized)
    chunks: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    budget = _chunk_budget(remaining, workers)
    for size, path in sized:
        if current and (current_bytes + size > budget or len(current) >= max_files):
            chunks.append(current)
            remaining -= current_bytes
            current, current_bytes = [], 0
            budget = _chunk_budget(remaining, workers)
        current.append(path)
        current_bytes += size
    if current:
        chunks.append(current)
    return chunks


def _chunk_budget(remaining: int, workers: int) -> int:
    return min(64 << 20, max(1 << 20, remaining // (4 * workers)))
