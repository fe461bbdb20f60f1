"""Benchmark: YARA-scan a >= 200 MB mixed corpus with the shipped rules; print one JSON object.

Same rules (``rules/``, one namespace per file, the same five external variables: empty for
the CLI, which cannot set them per file, the real values for Pukara), same files, two
scanning threads or processes each, compiled rules prepared beforehand for all (``yarac``;
Pukara's own cache):

* ``yara_cli``: Debian's ``yara -C -r -p 2``, the whole process (start, rule load, scan);
* ``pukara_scan`` / ``pukara_scan_yarax``: the ``pukara scan --json --processes 2`` command,
  the whole process tree (interpreter start, imports, rule-cache check, pool workers);
  ``pukara_scan_startup`` is that command on an empty folder (its fixed cost);
* ``yara_python`` / ``yara_x``: ``scan_paths(processes=2)``, the call ``pukara scan`` makes:
  a new pool per call, its start inside the timing (workers forked from this process, which
  holds the loaded rules; ``workers_forked`` false: forkserver workers loading them);
* ``*_warm``: the same on a pool started beforehand (``Scanner.start()``, a long-running host).

Rounds run every row once, in a rotated order; the host is shared, so the load average is
printed and both the best and the median are kept. ``cpu_seconds`` counts every process that
did the work (the CLI and the command rows: the whole process tree, reaped; the pools: their
workers and this process). ``speed_vs_cli`` is best wall vs best wall, ``*_median`` the
median of the per-round ratios; ``cpu_vs_cli`` compares CPU seconds for the same work.

The corpus is SYNTHETIC, built here in a temp dir: seeded random bytes, generated text,
copies of the small real samples under ../shared/data (pcaps, e-mails, JSON, logs) and a few
constructed files carrying strings of shipped rules (webshells, EICAR), mixed small and large.
Usage: ``python bench/bench_yara.py [--mb 220] [--repeat 5] [--keep DIR]``; with ``--keep`` the
corpus stays in DIR and a later run with the same ``--mb`` reuses it (``DIR.json`` records it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing.forkserver
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import yara

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from enrichment.yara.compiler import (
    EXTERNAL_NAMES,
    compile_rules,
    default_sources,
    discover,
)
from enrichment.yara.forkpool import fork_is_safe, reap_stopped
from enrichment.yara.scanner import Scanner
from enrichment.yara.yarax import YaraXScanner, compile_yarax
from pukara.cli.scan import expand

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
HITS = {
    "shell.aspx": b'<script runat="server">\nnew System.IO.StreamWriter(Request.Form["p"]);'
    b' w.Write(Request.Form["c"]);\n</script>\n',
    "cmd.php": b"<?php\n// cmd.php = Command Execution\nif($_GET['cmd']) {\n"
    b"  system($_GET['cmd']);\n}\n?>\n",
    "eicar.com": EICAR,
}
WORDS = [
    *("incident", "alert", "network", "server", "request", "response", "token", "user"),
    *("admin", "login", "password", "file", "report", "entity", "national", "team"),
    *("malware", "phishing", "domain", "address", "packet", "session"),
]


def corpus_counts(root: Path) -> dict[str, int]:
    """File and byte counts of the corpus under ``root``."""
    sizes = [p.stat().st_size for p in root.rglob("*") if p.is_file()]
    return {"files": len(sizes), "bytes": sum(sizes)}


def kept_corpus(root: Path, target_mb: int, seed: int = 7) -> dict[str, int]:
    """The corpus kept in ``root`` by an earlier run with the same size and seed (its
    manifest, ``<root>.json``, names them and the counts, which must still hold), else a
    new one."""
    manifest = root.with_name(root.name + ".json")
    wanted = {"mb": target_mb, "seed": seed}
    if manifest.exists() and root.is_dir():
        recorded = json.loads(manifest.read_text())
        counts = corpus_counts(root)
        if recorded == {**wanted, **counts}:
            return counts
    if root.exists():
        shutil.rmtree(root)
    counts = build_corpus(root, target_mb, seed)
    manifest.write_text(json.dumps({**wanted, **counts}))
    return counts


def build_corpus(root: Path, target_mb: int, seed: int = 7) -> dict[str, int]:
    """Write the mixed corpus; return its file and byte counts."""
    rng = random.Random(seed)
    total, count = 0, 0

    def put(relative: str, data: bytes) -> None:
        nonlocal total, count
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total, count = total + len(data), count + 1

    samples = [p for p in sorted(SHARED.rglob("*")) if p.is_file() and p.stat().st_size < 2 << 20]
    for i, sample in enumerate(samples):
        put(f"real/{i:04d}_{sample.name}", sample.read_bytes())
    for i in range(40):
        for name, data in HITS.items():
            put(f"hits/{i:03d}_{name}", b"padding\n" * rng.randrange(1, 500) + data)
    budget = target_mb * 1024 * 1024
    i = 0
    while total < budget:
        kind = i % 4
        if kind == 0:
            put(f"bin/big_{i:05d}.bin", rng.randbytes(rng.randrange(1, 6) << 20))
        elif kind == 1:
            put(f"bin/small_{i:05d}.dat", rng.randbytes(rng.randrange(4, 256) << 10))
        else:
            words = rng.choices(WORDS, k=rng.randrange(2_000, 60_000))
            put(f"text/{i:05d}.log", " ".join(words).encode())
        i += 1
    return {"files": count, "bytes": total}


#: runs argv[2:] as a child subreaper, writes its stdout to argv[1], reaps every descendant
#: (the forkserver and the pool workers too) and prints the wall and CPU seconds as JSON
REAPER = """
import ctypes, json, os, resource, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
with open(sys.argv[1], "wb") as out:
    start = time.perf_counter()
    code = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - start
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "seconds": wall, "cpu_seconds": use.ru_utime + use.ru_stime}))
"""
Run = dict[str, object]


def reaped(command: list[str], out: Path, env: dict[str, str] | None = None) -> Run:
    """Wall and CPU seconds of ``command`` and all its descendants; its stdout goes to ``out``."""
    done = subprocess.run(
        [sys.executable, "-c", REAPER, str(out), *command],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    run: Run = json.loads(done.stdout)
    if run.pop("code") != 0:
        raise RuntimeError(f"{command[0]} failed")
    return run


def time_cli(compiled: Path, corpus: Path, work: Path) -> Run:
    """``yara -C -r -p 2`` over the corpus (rules compiled by ``yarac`` beforehand)."""
    defines = [arg for name in EXTERNAL_NAMES for arg in ("-d", f"{name}=")]
    out = work / "cli.out"
    run = reaped(["yara", "-C", "-r", "-p", "2", "-w", *defines, str(compiled), str(corpus)], out)
    lines = out.read_text(errors="replace").splitlines()
    return {**run, "matches": len(lines), "errors": 0}


def time_command(engine: str, corpus: Path, home: Path, work: Path) -> Run:
    """``pukara scan --json --processes 2 --engine ENGINE`` over the corpus (cache warm)."""
    script = Path(sys.executable).with_name("pukara")
    out = work / f"pukara-{engine}.json"
    command = [str(script), "scan", "--json", "--processes", "2", "--engine", engine]
    run = reaped([*command, str(corpus)], out, {**os.environ, "PUKARA_HOME": str(home)})
    results = json.loads(out.read_bytes())
    run["matches"] = sum(len(r["matches"]) for r in results)
    run["errors"] = sum(1 for r in results if "error" in r)
    return run


def compile_cli(rule_files: list[tuple[str, str]], work: Path) -> Path:
    """Compile the rules for the CLI with ``yarac`` (one namespace per file, externals declared)."""
    defines = [arg for name in EXTERNAL_NAMES for arg in ("-d", f"{name}=")]
    compiled = work / "cli.yarc"
    sources = [f"{namespace}:{path}" for namespace, path in rule_files]
    subprocess.run(["yarac", "-w", *defines, *sources, str(compiled)], check=True)
    return compiled


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_of(pids: list[int], *, reaped_children: bool = False) -> float:
    """utime + stime (or, with ``reaped_children``, cutime + cstime) of live processes."""
    first = 13 if reaped_children else 11
    ticks = sum(int(f[first]) + int(f[first + 1]) for f in map(_stat_fields, pids))
    return ticks / os.sysconf("SC_CLK_TCK")


def _forkserver_pid() -> int | None:
    return multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined,no-any-return]


def _children(pid: int) -> set[str]:
    return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def _wait_reaped(pid: int, keep: set[str], timeout: float = 10.0) -> None:
    """Wait until the forkserver has reaped every child but ``keep`` (the warm pools)."""
    deadline = time.monotonic() + timeout
    while _children(pid) - keep and time.monotonic() < deadline:
        time.sleep(0.005)


def _reaped_cpu() -> float:
    """CPU seconds of this process's reaped children (a new pool forked from here)."""
    reap_stopped(wait=True)
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def time_pool(scanner: Scanner, corpus: Path) -> Run:
    """Walk ``corpus`` and ``scan_paths(processes=2)`` as ``pukara scan`` does; CPU of the
    workers (live; or reaped here, forked; or reaped by the forkserver) and of this process."""
    pids = scanner.worker_pids()
    if not pids:  # a new pool: its workers' CPU lands in cutime when reaped
        server = _forkserver_pid()
        keep = _children(server) if server else set()  # the warm pools' workers live on

        def workers_cpu() -> float:
            if server is None:
                return _reaped_cpu()
            _wait_reaped(server, keep)
            return _reaped_cpu() + _cpu_of([server], reaped_children=True)
    else:

        def workers_cpu() -> float:
            return _cpu_of(pids)

    workers_before, own_before = workers_cpu(), time.process_time()
    start = time.perf_counter()
    results = list(scanner.scan_paths(expand([str(corpus)])[0], processes=2))
    seconds = time.perf_counter() - start
    own = time.process_time() - own_before
    return {
        "seconds": seconds,
        "cpu_seconds": workers_cpu() - workers_before + own,
        "matches": sum(len(r.matches) for r in results),
        "errors": sum(1 for r in results if r.error),
    }


def summary(
    runs: list[Run], cli: list[Run], corpus: dict[str, int], *, scans_corpus: bool = True
) -> dict[str, object]:
    """Best and median wall and CPU of one row, and its ratios to the CLI of the same rounds."""
    walls = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    cpus = [float(r["cpu_seconds"]) for r in runs]  # type: ignore[arg-type]
    cli_walls = [float(r["seconds"]) for r in cli]  # type: ignore[arg-type]
    cli_cpus = [float(r["cpu_seconds"]) for r in cli]  # type: ignore[arg-type]
    row: dict[str, object] = {
        "seconds": round(min(walls), 3),
        "seconds_median": round(statistics.median(walls), 3),
        "cpu_seconds": round(min(cpus), 3),
        "cpu_seconds_median": round(statistics.median(cpus), 3),
    }
    if not scans_corpus:
        return row
    row["mb_per_s"] = round(corpus["bytes"] / 1048576 / min(walls), 1)
    row["files_per_s"] = round(corpus["files"] / min(walls), 1)
    row["matches"] = sorted({int(r["matches"]) for r in runs})  # type: ignore[call-overload]
    row["errors"] = max(int(r["errors"]) for r in runs)  # type: ignore[call-overload]
    if runs is not cli:
        row["speed_vs_cli"] = round(min(cli_walls) / min(walls), 2)
        row["speed_vs_cli_median"] = round(
            statistics.median(c / w for c, w in zip(cli_walls, walls, strict=True)), 2
        )
        row["cpu_vs_cli"] = round(min(cli_cpus) / min(cpus), 2)
        row["cpu_vs_cli_median"] = round(
            statistics.median(c / w for c, w in zip(cli_cpus, cpus, strict=True)), 2
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=220)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--keep", type=Path, help="keep the corpus here (reused by the next run with --keep)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-yara-"))
    corpus_dir = args.keep or work / "corpus"
    try:
        if args.keep:
            corpus = kept_corpus(corpus_dir, args.mb)
        else:
            corpus = build_corpus(corpus_dir, args.mb)
        paths = sorted(str(p) for p in corpus_dir.rglob("*") if p.is_file())
        for path in paths:  # warm the page cache so every engine reads from memory
            Path(path).read_bytes()
        sources = default_sources()
        files, _ = discover(sources)
        compiled = compile_rules(sources, work / "cache")
        compiled_x = compile_yarax(sources, work / "cache")
        rule_files = [(f.namespace.replace(":", "_"), str(f.path)) for f in files]
        cli_rules = compile_cli(rule_files, work)
        home = work / "home"
        empty = work / "empty"
        empty.mkdir()
        for engine in ("yara", "yara-x"):  # fills the command's own rule cache, untimed
            time_command(engine, corpus_dir, home, work)
        python_scanner, x_scanner = Scanner(compiled), YaraXScanner(compiled_x)
        warm_python = Scanner(compiled).start(2)
        warm_x = YaraXScanner(compiled_x).start(2)
        rows = {
            "yara_cli": lambda: time_cli(cli_rules, corpus_dir, work),
            "pukara_scan": lambda: time_command("yara", corpus_dir, home, work),
            "pukara_scan_yarax": lambda: time_command("yara-x", corpus_dir, home, work),
            "pukara_scan_startup": lambda: time_command("yara", empty, home, work),
            "yara_python": lambda: time_pool(python_scanner, corpus_dir),
            "yara_x": lambda: time_pool(x_scanner, corpus_dir),
            "yara_python_warm": lambda: time_pool(warm_python, corpus_dir),
            "yara_x_warm": lambda: time_pool(warm_x, corpus_dir),
        }
        names = list(rows)
        runs: dict[str, list[Run]] = {name: [] for name in names}
        forked = fork_is_safe()
        load_before = os.getloadavg()
        for round_ in range(args.repeat):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                time.sleep(0.2)  # the previous row's processes finish exiting
                runs[name].append(rows[name]())
        load_after = os.getloadavg()
        warm_python.close()
        warm_x.close()
        cli_runs = runs["yara_cli"]
        result = {
            name: summary(runs[name], cli_runs, corpus, scans_corpus=not name.endswith("startup"))
            for name in names
        }
        expected = result["yara_cli"]["matches"]
        for row in result.values():
            if "matches" in row:
                row["same_matches"] = row["matches"] == expected and row["errors"] == 0
        print(
            json.dumps(
                {
                    "benchmark": "yara_scan",
                    "corpus": {
                        **corpus,
                        "mb": round(corpus["bytes"] / 1048576, 1),
                        "synthetic": True,
                    },
                    "rules": {"files": len(files), "rules": compiled.rule_count},
                    "workers": 2,
                    "workers_forked": forked,
                    "repeat": args.repeat,
                    "versions": {
                        "yara_cli": subprocess.run(
                            ["yara", "--version"], check=True, capture_output=True, text=True
                        ).stdout.strip(),
                        "yara_python_libyara": yara.YARA_VERSION,
                        "yara_x": version("yara-x"),
                    },
                    "load_average": [round(x, 2) for x in (*load_before, *load_after)],
                    **result,
                    "targets": {"yara_python_vs_cli": 1.0, "yara_x_vs_cli": 2.5},
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
