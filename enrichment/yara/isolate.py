"""Run one compile step in a child process with a wall-clock timeout and an address-space cap.

libyara and yara-x cannot be interrupted from Python while they compile, so rule text that
costs minutes or gigabytes (10k strings, huge hex jumps) is compiled in a forkserver child
that is killed when it runs past ``timeout`` (SECURITY F3). The child returns only a short
status string; the compiled rules travel through our cache files, never through pickle.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import ModuleType


@dataclass(frozen=True)
class CompileLimits:
    """Seconds and bytes of address space one isolated compile may use."""

    timeout: float = 120.0
    memory_bytes: int = 2 * 1024 * 1024 * 1024


def forkserver_context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, its server preloading the YARA code and the main script's imports.

    Every child of the forkserver re-runs the main script (as ``__mp_main__``) before it can
    work: in Python 3.11 the ``"__main__"`` preload is dead code (the forkserver looks for a
    ``main_path`` key that ``spawn.get_preparation_data`` names ``init_main_from_path``;
    CPython gh-126631). So the modules the main script imports are preloaded by name: the
    re-run then finds them imported instead of importing them again in every worker (the
    ``pukara`` script: ``pukara.cli`` and rich, ~35 ms a worker). The yara-x engine is
    preloaded too (a missing optional module is skipped), so its workers only load rules.
    """
    context = multiprocessing.get_context("forkserver")
    yara_code = ["enrichment.yara.scanner", "enrichment.yara.yarax"]
    context.set_forkserver_preload(["__main__", *main_imports(), *yara_code])
    return context


def main_imports() -> list[str]:
    """Names of the already imported modules the main script refers to at its top level.

    The forkserver imports them from its default ``sys.path`` (3.11 ignores the parent's,
    CPython gh-117378): installed packages are found; a module found only through a path the
    script added itself is still imported by each worker.
    """
    main = sys.modules.get("__main__")
    names: set[str] = set()
    for key, value in vars(main).items() if main is not None else ():
        if key.startswith("__"):
            continue
        name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", "")
        if isinstance(name, str) and name in sys.modules and name not in _NOT_PRELOADED:
            names.add(name)
    return sorted(names)


_NOT_PRELOADED = frozenset({"__main__", "__mp_main__", "builtins"})


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
