"""Workers forked from the process holding the rules: same results, really in children, F3 kept.

Whether this process may fork depends on what ran in it before (an in-process yara-x scan
starts yara-x's timeout thread), so each check runs in a fresh interpreter of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from enrichment.yara.compiler import compile_rules, default_sources
from enrichment.yara.yarax import compile_yarax
from tests.enrichment.test_yara_scanner import EXPECTED, SAMPLES, slow_rule, write_samples

ROOT = Path(__file__).resolve().parents[2]

#: prelude of every child script: argv = cache, samples folder, engine
PRELUDE = """
import json, os, sys, threading
from pathlib import Path
from enrichment.yara.compiler import compile_rules, default_sources, RuleSource
from enrichment.yara.forkpool import fork_is_safe
from enrichment.yara.scanner import Scanner, ScanLimits
from enrichment.yara.yarax import YaraXScanner, compile_yarax

cache, samples, engine = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def open_scanner(sources=None, limits=None):
    sources = sources or default_sources()
    if engine == "yara":
        return Scanner(compile_rules(sources, cache), limits)
    return YaraXScanner(compile_yarax(sources, cache), limits)

def parent_of(pid):
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

def found(results):
    return {r.path: sorted([m.namespace, m.rule] for m in r.matches) for r in results}

paths = sorted(str(p) for p in samples.iterdir())
"""


def run_child(body: str, cache: Path, samples: Path, engine: str) -> dict[str, Any]:
    """Run PRELUDE + ``body`` in a new interpreter; it prints one JSON object."""
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + body, str(cache), str(samples), engine],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cache")
    compile_rules(default_sources(), folder)  # the children load from this cache
    compile_yarax(default_sources(), folder)
    return folder


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_samples(tmp_path_factory.mktemp("samples"))


def expected(samples: Path) -> dict[str, list[list[str]]]:
    return {str(samples / name): [list(m) for m in EXPECTED[name]] for name in SAMPLES}


@pytest.mark.parametrize("engine", ["yara", "yara-x"])
def test_forked_workers_scan_in_children_with_the_plain_results(
    cache: Path, samples: Path, engine: str
) -> None:
    body = """
held = open(samples / "clean.txt", "rb")  # a descriptor the workers must not keep
scanner = open_scanner()
safe_before = fork_is_safe()
scanner.start(2)
pids = scanner.worker_pids()
parents = [parent_of(p) for p in pids]
worker_fds = sorted(sorted(os.listdir(f"/proc/{pid}/fd")) for pid in pids)
limits = [  # soft RLIMIT_AS of each worker, and this process's own
    next(l for l in Path(f"/proc/{pid}/limits").read_text().splitlines() if "address" in l)
    .split()[3]
    for pid in [*pids, os.getpid()]
]
pooled = found(scanner.scan_paths(paths, chunk_size=2))
import tempfile
with tempfile.NamedTemporaryFile() as big:  # enough work to show up in the workers' CPU
    big.write(os.urandom(8 << 20))
    big.flush()
    list(scanner.scan_paths([big.name] * 4, chunk_size=1))
cpu = [sum(map(int, Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[11:13]))
       for p in pids]
scanner.close()
once = found(open_scanner().scan_paths(paths, processes=2))
threads_after = len(os.listdir("/proc/self/task"))
print(json.dumps({
    "safe_before": safe_before, "pids": pids, "parents": parents,
    "me": os.getpid(), "fds": worker_fds, "limits": limits, "pooled": pooled, "once": once,
    "plain": found(open_scanner().scan_file(p) for p in paths), "cpu": cpu,
    "threads_after": threads_after, "held": held.fileno(),
}))
"""
    result = run_child(body, cache, samples, engine)
    assert result["safe_before"] is True
    assert len(result["pids"]) == 2
    assert result["me"] not in result["pids"]
    assert result["parents"] == [result["me"], result["me"]]  # forked by the scanning process
    # only stdio and the worker's socket: the parent's open file is not inherited
    assert all(len(fds) == 4 for fds in result["fds"]), result["fds"]
    assert all(str(result["held"]) not in fds for fds in result["fds"])
    *capped, own = result["limits"]
    assert own == "unlimited"
    assert all(soft.isdigit() for soft in capped), capped  # F3: each worker capped
    assert result["pooled"] == result["once"] == result["plain"] == expected(samples)
    assert sum(result["cpu"]) > 0  # the scanning ran in them
    if engine == "yara-x":
        # the parent never scanned: no yara-x timeout thread here, so it may fork again
        assert result["threads_after"] == 1


def test_forked_yara_x_worker_still_times_out(cache: Path, samples: Path, tmp_path: Path) -> None:
    rules = slow_rule(tmp_path / "slow")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00" * (1 << 20))
    body = f"""
scanner = open_scanner([RuleSource("entity-a", Path({str(rules)!r}))], ScanLimits(timeout=1))
forked = fork_is_safe()
results = list(scanner.scan_paths([{str(big)!r}], processes=1))
print(json.dumps({{"forked": forked, "errors": [r.error for r in results]}}))
"""
    result = run_child(body, cache, samples, "yara-x")
    assert result == {"forked": True, "errors": ["timeout"]}


def test_after_an_in_process_yara_x_scan_the_forkserver_is_used(cache: Path, samples: Path) -> None:
    body = """
scanner = open_scanner()
scanner.scan_file(paths[0])  # starts yara-x's timeout thread in this process
scanner.start(2)
pids = scanner.worker_pids()
parents = [parent_of(p) for p in pids]
pooled = found(scanner.scan_paths(paths))
scanner.close()
print(json.dumps({"safe": fork_is_safe(), "parents": parents,
                  "me": os.getpid(), "pooled": pooled}))
"""
    result = run_child(body, cache, samples, "yara-x")
    assert result["safe"] is False
    assert result["me"] not in result["parents"]
    assert result["pooled"] == expected(samples)


@pytest.mark.parametrize("engine", ["yara", "yara-x"])
def test_a_killed_worker_leaves_its_files_to_the_others(
    cache: Path, samples: Path, engine: str
) -> None:
    body = """
import signal
scanner = open_scanner().start(2)
first, second = scanner.worker_pids()
os.kill(first, signal.SIGKILL)
os.waitid(os.P_PID, first, os.WEXITED | os.WNOWAIT)
one_left = found(scanner.scan_paths(paths, chunk_size=1))
left = scanner.worker_pids()
os.kill(second, signal.SIGKILL)
os.waitid(os.P_PID, second, os.WEXITED | os.WNOWAIT)
none_left = [[r.path, r.error] for r in scanner.scan_paths(paths)]
print(json.dumps({"one_left": one_left, "left": left, "second": second,
                  "none_left": none_left, "after": scanner.worker_pids()}))
"""
    result = run_child(body, cache, samples, engine)
    assert result["one_left"] == expected(samples)
    assert result["left"] == [result["second"]]
    paths = sorted(str(samples / name) for name in SAMPLES)
    assert sorted(result["none_left"]) == [[p, "worker crashed"] for p in paths]
    assert result["after"] == []  # the dead pool was dropped


def test_a_second_thread_keeps_the_process_from_forking(cache: Path, samples: Path) -> None:
    body = """
scanner = open_scanner()
safe_before = fork_is_safe()
stop = threading.Event()
thread = threading.Thread(target=stop.wait)  # e.g. a progress bar's refresh thread
thread.start()
safe_during = fork_is_safe()
scanner.start(2)
pids = scanner.worker_pids()
parents = [parent_of(p) for p in pids]
pooled = found(scanner.scan_paths(paths))
scanner.close()
stop.set()
thread.join()
print(json.dumps({"safe": [safe_before, safe_during], "parents": parents,
                  "me": os.getpid(), "pooled": pooled}))
"""
    result = run_child(body, cache, samples, "yara")
    assert result["me"] not in result["parents"]  # forkserver workers
    assert result["pooled"] == expected(samples)
    assert result["safe"] == [True, False]


def test_stopped_workers_are_reaped(cache: Path, samples: Path) -> None:
    body = """
from enrichment.yara.forkpool import reap_stopped
scanner = open_scanner().start(2)
pids = scanner.worker_pids()
scanner.close()  # does not wait for the workers' exit
reap_stopped(wait=True)
gone = [not Path(f"/proc/{pid}").exists() for pid in pids]
for _ in range(3):  # pools made per call: their workers are reaped by the next one at latest
    found(scanner.scan_paths(paths))
reap_stopped(wait=True)
children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
print(json.dumps({"gone": gone, "children": children}))
"""
    result = run_child(body, cache, samples, "yara")
    assert result == {"gone": [True, True], "children": []}


@pytest.mark.parametrize("engine", ["yara", "yara-x"])
def test_f3_forked_worker_memory_cap_fails_one_file_not_the_batch(
    cache: Path, samples: Path, tmp_path: Path, engine: str
) -> None:
    sparse = tmp_path / "huge.bin"
    with sparse.open("wb") as handle:
        handle.truncate(600 << 20)  # sparse: no disk used, but 600 MiB to map
    body = f"""
limits = ScanLimits(memory_bytes=400 << 20, max_file_bytes=1 << 30)
scanner = open_scanner(limits=limits)
forked = fork_is_safe()
eicar = str(samples / "eicar.com")
results = {{r.path: r for r in scanner.scan_paths([{str(sparse)!r}, eicar], processes=1)}}
print(json.dumps({{"forked": forked, "error": results[{str(sparse)!r}].error,
                  "eicar": found([results[eicar]])[eicar]}}))
"""
    result = run_child(body, cache, samples, engine)
    assert result["forked"] is True
    assert result["error"].startswith("scan failed: ")
    assert "/proc/self" not in result["error"]
    assert result["eicar"] == [list(m) for m in EXPECTED["eicar.com"]]
