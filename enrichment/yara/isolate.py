"""Run one compile step in a child process with a wall-clock timeout and an address-space cap.

libyara and yara-x cannot be interrupted from Python while they compile, so rule text that
costs minutes or gigabytes (10k strings, huge hex jumps) is compiled in a forkserver child
that is killed when it runs past ``timeout`` (SECURITY F3). The child returns only a short
status string; the compiled rules travel through our cache files, never through pickle.
"""

from __future__ import annotations

import multiprocessing
import resource
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection


@dataclass(frozen=True)
class CompileLimits:
    """Seconds and bytes of address space one isolated compile may use."""

    timeout: float = 120.0
    memory_bytes: int = 2 * 1024 * 1024 * 1024


def forkserver_context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, its server preloading the main module and the YARA code once.

    Keeping ``__main__`` in the preload list matters: without it every child re-runs the main
    script (the whole CLI) before it can start working. The yara-x engine is preloaded too (a
    missing optional module is skipped), so its workers only load their rules.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "enrichment.yara.scanner", "enrichment.yara.yarax"])
    return context


class CompileAborted(Exception):
    """The isolated step ran out of time or memory, or its process died."""


def _child(
    conn: Connection, memory_bytes: int, step: Callable[..., None], args: tuple[object, ...]
) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory_bytes if hard == resource.RLIM_INFINITY else min(hard, memory_bytes)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        step(*args)
        conn.send("ok")
    except MemoryError:
        conn.send("memory cap reached")
    except Exception:  # reported to the parent as text, never re-raised across processes
        conn.send("failed: " + traceback.format_exc(limit=1).strip().splitlines()[-1])
    finally:
        conn.close()


def run_isolated(step: Callable[..., None], *args: object, limits: CompileLimits) -> None:
    """Run ``step(*args)`` in a capped child; :class:`CompileAborted` unless it ends well."""
    context = forkserver_context()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(send, limits.memory_bytes, step, args), daemon=True
    )
    process.start()
    send.close()
    try:
        if not receive.poll(limits.timeout):
            raise CompileAborted(f"compilation exceeded {limits.timeout:g} s")
        try:
            status = receive.recv()
        except EOFError as exc:
            raise CompileAborted("the compiling process died (memory cap?)") from exc
        if status != "ok":
            raise CompileAborted(f"compilation {status}")
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receive.close()
