"""The YARA scanner: real shipped rules on constructed files, externals (F6), timeouts (F3)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from enrichment.yara.compiler import RuleSource, compile_rules, default_sources
from enrichment.yara.externals import escape_bytes, externals_for, guess_filetype
from enrichment.yara.isolate import main_imports
from enrichment.yara.scanner import ScanLimits, Scanner, plan_chunks

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

#: constructed files (not real samples): each is built from the strings of one shipped rule
SAMPLES: dict[str, bytes] = {
    "shell.aspx": b'<%@ Page Language="C#" %>\n<script runat="server">\n'
    b'void Page_Load(){ var w = new System.IO.StreamWriter(Request.Form["p"]);'
    b' w.Write(Request.Form["c"]); }\n</script>\n',
    "tunnel.aspx": b"System.Net.IPEndPoint\nResponse.AddHeader\nRequest.InputStream.Read\n"
    b"Request.Headers.Get\nResponse.Write\nSystem.Buffer.BlockCopy\nResponse.BinaryWrite\n"
    b"SocketException soex\n",
    "cmd.php": b"<?php\n// cmd.php = Command Execution\nif($_GET['cmd']) {\n"
    b"  system($_GET['cmd']);\n}\n?>\n",
    "eicar.com": EICAR,
    "clean.txt": b"nothing to see here\n" * 50,
}

EXPECTED: dict[str, list[tuple[str, str]]] = {
    "shell.aspx": [
        ("national/signature_base/apt_hafnium.yar", "WEBSHELL_ASP_Embedded_Mar21_1"),
        ("national/signature_base/apt_hafnium.yar", "WEBSHELL_HAFNIUM_CISA_10328929_01"),
    ],
    "tunnel.aspx": [("national/signature_base/webshell_regeorg.yar", "REGEORG_Tuneller_generic")],
    "cmd.php": [
        ("national/yara_rules/webshells__WShell_THOR_Webshells.yar", "webshell_php_cmd")
    ],
    "eicar.com": [("national/pukara/eicar.yar", "PUKARA_EICAR_Test_File")],
    "clean.txt": [],
}


def write_samples(folder: Path) -> Path:
    """The SAMPLES as files in ``folder``."""
    for name, data in SAMPLES.items():
        (folder / name).write_bytes(data)
    return folder


def found(result: object) -> list[tuple[str, str]]:
    return sorted((m.namespace, m.rule) for m in result.matches)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner(compile_rules(default_sources(), tmp_path_factory.mktemp("cache")))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_real_rules_match_files_built_from_their_strings(
    scanner: Scanner, samples: Path, name: str
) -> None:
    result = scanner.scan_file(samples / name)
    assert result.error is None
    assert found(result) == EXPECTED[name]


def test_eicar_match_carries_tags_meta_and_the_matched_string(scanner: Scanner) -> None:
    result = scanner.scan_bytes(b"prefix " + EICAR, "attachment.txt")
    assert result.to_dict() == {
        "path": "attachment.txt",
        "matches": [
            {
                "rule": "PUKARA_EICAR_Test_File",
                "namespace": "national/pukara/eicar.yar",
                "tags": [],
                "meta": {
                    "description": "EICAR anti-malware test string (harmless; used by exercises"
                    " and self-tests)",
                    "author": "Pukara",
                    "reference": "https://www.eicar.org/download-anti-malware-testfile/",
                    "license": "MIT",
                    "date": "2026-11-23",
                    "severity": "info",
                },
                "strings": [
                    {"identifier": "$eicar", "offset": 7, "data": escape_bytes(EICAR, 64)}
                ],
            }
        ],
    }
    hit = result.matches[0].to_hit("sha256:abc")
    assert (hit.kind, hit.rule, hit.namespace, hit.observable) == (
        "yara", "PUKARA_EICAR_Test_File", "national/pukara/eicar.yar", "sha256:abc"
    )


def test_pool_gives_the_same_results_as_in_process(scanner: Scanner, samples: Path) -> None:
    paths = [str(samples / name) for name in sorted(SAMPLES)]
    pooled = {r.path: found(r) for r in scanner.scan_paths(paths, processes=2, chunk_size=2)}
    assert pooled == {str(samples / name): EXPECTED[name] for name in SAMPLES}


def test_chunks_shrink_to_single_small_files_at_the_end(tmp_path: Path) -> None:
    sizes = [5 << 20] * 8 + [300 << 10] * 40 + [1 << 10] * 30
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i:03d}"
        with path.open("wb") as handle:
            handle.truncate(size)
        paths.append(str(path))
    chunks = plan_chunks(paths, workers=2, max_files=16)
    planned = [path for chunk in chunks for path in chunk]
    assert sorted(planned) == sorted(paths)  # every file once
    size_of = {path: os.path.getsize(path) for path in paths}
    assert [size_of[p] for p in planned] == sorted(sizes, reverse=True)  # largest first
    assert all(len(chunk) <= 16 for chunk in chunks)
    chunk_bytes = [sum(size_of[p] for p in chunk) for chunk in chunks]
    # guided: the chunks shrink, and the last ones are single files or a few small ones
    assert chunk_bytes[8] > chunk_bytes[16] > chunk_bytes[-1]
    tail = zip(chunks[-5:], chunk_bytes[-5:], strict=True)
    assert all(len(chunk) == 1 or size <= 1 << 20 for chunk, size in tail)


def test_forkserver_preloads_the_modules_the_main_script_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each pool worker re-runs the main script; what it imports must already be in the server
    script = ModuleType("__main__")
    source = "import json\nfrom email.utils import formatdate\n"
    source += "from enrichment.yara import scanner\nLIMIT = 3\n"
    exec(compile(source, "main.py", "exec"), script.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert main_imports() == ["email.utils", "enrichment.yara.scanner", "json"]


def test_escape_bytes_truncates_and_escapes() -> None:
    assert escape_bytes(b"ab\x00\\\xff" + b"z" * 100, 8) == "ab\\x00\\\\\\xffzzz"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"MZ\x90\x00", "pe"),
        (b"\x7fELF\x02", "elf"),
        (b"%PDF-1.7", "pdf"),
        (b"PK\x03\x04", "zip"),
        (b"\xd4\xc3\xb2\xa1", "pcap"),
        (b"hello\n", "text"),
        (b"\x00\x01\x02", "data"),
        (b"", "empty"),
    ],
)
def test_guess_filetype(head: bytes, kind: str) -> None:
    assert guess_filetype(head) == kind


def test_f6_submitted_names_reach_rules_only_as_externals(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    folder.mkdir()
    (folder / "ext.yar").write_text(
        'rule by_name { condition: filename == "invoice.pdf.exe" and extension == "exe" '
        'and filetype == "pe" }\n'
    )
    scanner = Scanner(compile_rules([RuleSource("entity-a", folder)], tmp_path / "cache"))
    assert [m.rule for m in scanner.scan_bytes(b"MZ\x90\x00", "invoice.pdf.exe").matches] == [
        "by_name"
    ]
    injected = 'x" or true or "'
    assert scanner.scan_bytes(b"MZ\x90\x00", injected).matches == []
    assert externals_for("/up/a/" + injected, b"MZ")["filename"] == injected


def slow_rule(folder: Path) -> Path:
    """A folder with one rule quadratic in the file size: 1 MiB runs far past any timeout."""
    folder.mkdir()
    (folder / "slow.yar").write_text(
        "rule slow { condition: for any i in (0..filesize) : "
        "(for any j in (0..filesize) : (uint8(i) == uint8(j) + 1)) }\n"
    )
    return folder


def test_f3_pathological_rule_is_recorded_as_timeout(tmp_path: Path) -> None:
    folder = slow_rule(tmp_path / "entity")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00" * (1 << 20))
    compiled = compile_rules([RuleSource("entity-a", folder)], tmp_path / "cache")
    scanner = Scanner(compiled, ScanLimits(timeout=1))
    assert scanner.scan_file(big).error == "timeout"
    pooled = list(scanner.scan_paths([str(big)], processes=1))
    assert [(r.path, r.error, r.matches) for r in pooled] == [(str(big), "timeout", [])]


def test_size_cap_and_unreadable_files_are_results_not_exceptions(
    scanner: Scanner, tmp_path: Path
) -> None:
    small = Scanner(scanner.compiled, ScanLimits(max_file_bytes=10))
    path = tmp_path / "eleven.bin"
    path.write_bytes(b"x" * 11)
    assert small.scan_file(path).error == "too large: 11 bytes > 10"
    assert small.scan_bytes(b"x" * 11, "p").error == "too large: 11 bytes > 10"
    missing = scanner.scan_file(tmp_path / "missing")
    assert missing.error == "unreadable: No such file or directory"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert scanner.scan_file(fifo).error == "not a regular file"
    assert scanner.scan_file(tmp_path).error == "unreadable: Is a directory"


@pytest.mark.parametrize("engine", ["yara", "yara-x"])
def test_f3_worker_memory_cap_fails_one_file_not_the_batch(
    tmp_path: Path, samples: Path, engine: str
) -> None:
    sparse = tmp_path / "huge.bin"
    with sparse.open("wb") as handle:
        handle.truncate(600 << 20)  # sparse: no disk used, but 600 MiB to map
    limits = ScanLimits(memory_bytes=400 << 20, max_file_bytes=1 << 30)
    sources = default_sources()
    if engine == "yara":
        capped: Scanner = Scanner(compile_rules(sources, tmp_path / "cache"), limits)
    else:
        from enrichment.yara.yarax import YaraXScanner, compile_yarax

        capped = YaraXScanner(compile_yarax(sources, tmp_path / "cache"), limits)
    eicar = str(samples / "eicar.com")
    results = {r.path: r for r in capped.scan_paths([str(sparse), eicar], processes=1)}
    error = results[str(sparse)].error or ""
    assert error.startswith("scan failed: ")
    assert "/proc/self" not in error
    assert found(results[eicar]) == EXPECTED["eicar.com"]
