"""The yara-x engine: same matches as yara-python, fallback for refused files, same F-rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yara_x

from enrichment.yara.compiler import RuleSource, compile_rules, default_sources
from enrichment.yara.isolate import CompileLimits
from enrichment.yara.scanner import ScanLimits, Scanner
from enrichment.yara.yarax import YaraXScanner, build_yarax_matcher, compile_yarax
from pukara.core.errors import InvalidInput
from tests.enrichment.test_yara_compiler import write_compile_bomb
from tests.enrichment.test_yara_scanner import EXPECTED, SAMPLES, found, slow_rule, write_samples


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_samples(tmp_path_factory.mktemp("samples"))


def test_shipped_rules_all_compile_under_yara_x(cache: Path) -> None:
    compiled = compile_yarax(default_sources(), cache)
    assert compiled.unsupported == ()
    assert compiled.fallback is None
    assert compiled.errors == ()
    assert len(compiled.namespaces) == 222


def test_yara_x_gives_the_same_matches_as_yara_python(cache: Path, samples: Path) -> None:
    python_engine = Scanner(compile_rules(default_sources(), cache))
    x_engine = YaraXScanner(compile_yarax(default_sources(), cache))
    for name in SAMPLES:
        with_x = x_engine.scan_file(samples / name)
        with_python = python_engine.scan_file(samples / name)
        assert found(with_x) == found(with_python) == EXPECTED[name]
        assert with_x.to_dict() == with_python.to_dict()
    paths = [str(samples / name) for name in sorted(SAMPLES)]
    pooled = {r.path: found(r) for r in x_engine.scan_paths(paths, processes=2)}
    assert pooled == {str(samples / name): EXPECTED[name] for name in SAMPLES}


def test_file_refused_by_yara_x_falls_back_to_yara_python(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    folder.mkdir()
    # \q is an escape libyara tolerates and yara-x rejects
    (folder / "lenient.yar").write_text("rule lenient { strings: $a = /ab\\qc/ condition: $a }\n")
    (folder / "plain.yar").write_text('rule plain { strings: $a = "plain" condition: $a }\n')
    compiled = compile_yarax([RuleSource("entity-a", folder)], tmp_path / "cache")
    assert [(Path(e.file).name, e.line) for e in compiled.unsupported] == [("lenient.yar", 1)]
    assert compiled.unsupported[0].message == "error[E014]: invalid regular expression"
    assert compiled.namespaces == ("entity-a/plain.yar",)
    scanner = YaraXScanner(compiled)
    result = scanner.scan_bytes(b"abqc plain", "x")
    assert found(result) == [("entity-a/lenient.yar", "lenient"), ("entity-a/plain.yar", "plain")]
    pooled = list(scanner.scan_paths([_write(tmp_path / "s.bin", b"abqc plain")], processes=1))
    assert found(pooled[0]) == found(result)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_f1_yara_x_include_is_refused_without_showing_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    folder.mkdir()
    (folder / "inc.yar").write_text('include "/etc/passwd"\nrule ok { condition: true }\n')
    compiled = compile_yarax([RuleSource("entity-a", folder)], tmp_path / "cache")
    messages = [str(e) for e in (*compiled.unsupported, *compiled.errors)]
    assert messages == [
        f"{folder / 'inc.yar'}:1: error[E044]: include statements not allowed",
        f"{folder / 'inc.yar'}:1: includes are disabled",
    ]
    assert not any("root:" in message for message in messages)


def test_f4_module_imports_checked_for_yara_x(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    folder.mkdir()
    (folder / "c.yar").write_text('import "console"\nrule c { condition: console.log("x") }\n')
    compiled = compile_yarax([RuleSource("entity-a", folder)], tmp_path / "cache")
    assert compiled.namespaces == ()
    assert [e.line for e in compiled.errors] == [1]
    assert compiled.errors[0].message.startswith("module 'console' is not allowed")


def test_f2_foreign_yara_x_rules_are_refused(tmp_path: Path, cache: Path) -> None:
    compiled = compile_yarax(default_sources(), cache)
    uploaded = tmp_path / (compiled.cache_path.name)
    with uploaded.open("wb") as handle:
        yara_x.compile("rule evil { condition: true }").serialize_into(handle)
    spec = YaraXScanner(compiled).worker_spec()
    forged = type(spec)(spec.engine, str(uploaded), spec.cache_dir, spec.limits)
    with pytest.raises(InvalidInput):
        build_yarax_matcher(forged)


def test_yara_x_timeout_is_a_result(tmp_path: Path) -> None:
    folder = slow_rule(tmp_path / "entity")
    compiled = compile_yarax([RuleSource("entity-a", folder)], tmp_path / "cache")
    scanner = YaraXScanner(compiled, ScanLimits(timeout=1))
    assert scanner.scan_bytes(b"\x00" * (1 << 20), "big.bin").error == "timeout"
    assert found(scanner.scan_bytes(b"\x00" * 64, "small.bin")) == []
    assert found(scanner.scan_bytes(b"\x00\x01", "two.bin")) == [("entity-a/slow.yar", "slow")]


def test_unreadable_yara_x_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    folder.mkdir()
    (folder / "a.yar").write_text('rule A { strings: $a = "alpha" condition: $a }\n')
    first = compile_yarax([RuleSource("e", folder)], tmp_path / "cache")
    first.cache_path.write_bytes(b"YARA-X\x00truncated")
    again = compile_yarax([RuleSource("e", folder)], tmp_path / "cache")
    assert found(YaraXScanner(again).scan_bytes(b"alpha", "a")) == [("e/a.yar", "A")]


def test_f3_yara_x_compile_bomb_is_cut_off(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    bomb = write_compile_bomb(folder)
    (folder / "fine.yar").write_text('rule fine { strings: $a = "fine" condition: $a }\n')
    compiled = compile_yarax(
        [RuleSource("e", folder)], tmp_path / "cache", limits=CompileLimits(timeout=1.0)
    )
    assert [str(e) for e in compiled.errors] == [f"{bomb}: compilation exceeded 1 s"]
    assert compiled.namespaces == ("e/fine.yar",)
    assert found(YaraXScanner(compiled).scan_bytes(b"fine", "f")) == [("e/fine.yar", "fine")]
