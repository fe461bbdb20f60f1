"""The YARA compiler: shipped rules, namespaces, cache, and SECURITY F1, F2, F4, F5."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yara

from enrichment.yara.cache import load_compiled
from enrichment.yara.compiler import (
    ALLOWED_MODULES,
    RuleSource,
    compile_rules,
    default_sources,
    discover,
    parse_yara_error,
)
from enrichment.yara.isolate import CompileLimits
from pukara.core.errors import InvalidInput

#: what rules/README.md documents: 222 files (221 published + Pukara's EICAR rule), 1421 rules
SHIPPED_FILES = 222
SHIPPED_RULES = 1421


def write(folder: Path, name: str, text: str) -> Path:
    """A constructed rule file (not a real sample)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_shipped_rules_compile_in_one_namespace_per_file(cache: Path) -> None:
    compiled = compile_rules(default_sources(), cache)
    assert compiled.errors == ()
    assert compiled.rule_count == SHIPPED_RULES
    assert len(compiled.namespaces) == SHIPPED_FILES
    assert "national/signature_base/apt_hafnium.yar" in compiled.namespaces
    assert "national/pukara/eicar.yar" in compiled.namespaces
    assert "webshell_php_cmd" in {r.identifier for r in compiled.rules}


def test_second_compile_is_a_cache_hit_and_a_change_is_not(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    write(folder, "a.yar", 'rule A { strings: $a = "alpha" condition: $a }\n')
    first = compile_rules([RuleSource("entity-a", folder)], tmp_path / "cache")
    before = first.cache_path.stat()
    assert before.st_mode & 0o777 == 0o600
    second = compile_rules([RuleSource("entity-a", folder)], tmp_path / "cache")
    after = second.cache_path.stat()
    assert second.cache_path == first.cache_path
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    write(folder, "a.yar", 'rule A { strings: $a = "beta" condition: $a }\n')
    third = compile_rules([RuleSource("entity-a", folder)], tmp_path / "cache")
    assert third.key != first.key
    assert [m.rule for m in third.rules.match(data=b"xx beta xx")] == ["A"]


def test_broken_real_file_is_located_and_the_others_still_load(
    tmp_path: Path, shared_data: Path
) -> None:
    folder = tmp_path / "rules"
    broken = shared_data / "yara" / "yara-rules" / "malware__MALW_AZORULT.yar"
    folder.mkdir()
    shutil.copy(broken, folder / broken.name)
    shutil.copy(shared_data / "yara" / "webshell_regeorg.yar", folder / "webshell_regeorg.yar")
    source = [RuleSource("local", folder)]
    # with the default allow-list the cuckoo import itself is refused, at its line
    refused = compile_rules(source, tmp_path / "c1")
    assert [(e.file, e.line) for e in refused.errors] == [(str(folder / broken.name), 5)]
    assert "'cuckoo' is not allowed" in refused.errors[0].message
    # with cuckoo allowed, libyara's own error is reported with file and line
    compiled = compile_rules(source, tmp_path / "c2", allowed_modules=ALLOWED_MODULES | {"cuckoo"})
    assert [str(e) for e in compiled.errors] == [
        f'{folder / broken.name}:23: invalid field name "sync"'
    ]
    assert compiled.namespaces == ("local/webshell_regeorg.yar",)
    assert compiled.rule_count == 1


def test_parse_yara_error_reads_both_message_forms() -> None:
    error = parse_yara_error(yara.SyntaxError("line 7: syntax error, unexpected <EOF>"), "f.yar")
    assert (error.file, error.line, error.message) == ("f.yar", 7, "syntax error, unexpected <EOF>")
    error = parse_yara_error(yara.SyntaxError("/r/x.yar(3): undefined string"), "/r/x.yar")
    assert (error.line, error.message) == (3, "undefined string")


@pytest.mark.parametrize("target", ["/etc/passwd", "../secrets.yar", "/nonexistent/none.yar"])
def test_f1_include_is_refused_without_revealing_the_file(tmp_path: Path, target: str) -> None:
    secret = tmp_path / "secrets.yar"
    secret.write_text("TOP-SECRET-CONTENT\n")
    folder = tmp_path / "entity"
    path = write(folder, "inc.yar", f'include "{target}"\nrule ok {{ condition: true }}\n')
    compiled = compile_rules([RuleSource("entity-a", folder)], tmp_path / "cache")
    assert [(e.file, e.line, e.message) for e in compiled.errors] == [
        (str(path), 1, "includes are disabled")
    ]
    text = str(compiled.errors[0])
    assert "root:" not in text and "TOP-SECRET" not in text
    assert compiled.rule_count == 0


def test_f1_symlink_in_rule_folder_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    folder.mkdir()
    (folder / "passwd.yar").symlink_to("/etc/passwd")
    files, errors = discover([RuleSource("entity-a", folder)])
    assert files == []
    assert [e.message for e in errors] == ["symbolic links in rule folders are not followed"]
    assert "root:" not in str(errors[0])


def test_f2_foreign_compiled_rules_are_never_loaded(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folder = tmp_path / "entity"
    write(folder, "a.yar", "rule A { condition: true }\n")
    ours = compile_rules([RuleSource("e", folder)], cache)
    assert load_compiled(ours.cache_path, cache) is not None
    uploaded = tmp_path / "upload.yarc"
    yara.compile(source="rule evil { condition: true }").save(str(uploaded))
    with pytest.raises(InvalidInput, match="only loaded from Pukara's own cache"):
        load_compiled(uploaded, cache)
    renamed = tmp_path / ours.cache_path.name
    shutil.copy(ours.cache_path, renamed)
    with pytest.raises(InvalidInput):
        load_compiled(renamed, cache)
    ours.cache_path.chmod(0o664)
    with pytest.raises(InvalidInput):
        load_compiled(ours.cache_path, cache)


def test_f2_compiled_rules_in_a_rule_folder_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    folder.mkdir()
    rules = yara.compile(source="rule evil { condition: true }")
    rules.save(str(folder / "evil.yarc"))
    rules.save(str(folder / "disguised.yar"))
    compiled = compile_rules([RuleSource("entity-a", folder)], tmp_path / "cache")
    assert sorted((Path(e.file).name, e.message) for e in compiled.errors) == [
        ("disguised.yar", "compiled rules are refused; submit rule source (.yar)"),
        ("evil.yarc", "compiled rules are refused; submit rule source (.yar)"),
    ]
    assert compiled.rule_count == 0


@pytest.mark.parametrize(
    ("header", "module"),
    [
        ('import "console"', "console"),
        ('import "cuckoo"', "cuckoo"),
        ('import "magic"', "magic"),
        ('import /* hidden */\n "console"', "console"),
        ('import "con\\x73ole"', "con\\x73ole"),
    ],
)
def test_f4_only_allow_listed_modules(tmp_path: Path, header: str, module: str) -> None:
    folder = tmp_path / "entity"
    write(folder, "mod.yar", f'import "pe"\n{header}\nrule m {{ condition: true }}\n')
    write(folder, "fine.yar", 'import "pe"\nrule fine { condition: true }\n')
    compiled = compile_rules([RuleSource("entity-a", folder)], tmp_path / "cache")
    assert len(compiled.errors) == 1
    error = compiled.errors[0]
    assert (Path(error.file).name, error.line) == ("mod.yar", 2)
    assert error.message.startswith(f"module {module!r} is not allowed")
    assert compiled.namespaces == ("entity-a/fine.yar",)


def test_f5_entity_rule_cannot_shadow_a_national_rule(tmp_path: Path) -> None:
    folder = tmp_path / "entity-a"
    same_name = 'rule PUKARA_EICAR_Test_File { strings: $a = "EICAR" condition: $a }\n'
    write(folder, "mine.yar", same_name)
    sources = [*default_sources(), RuleSource("entity-a", folder)]
    compiled = compile_rules(sources, tmp_path / "cache")
    eicar = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    found = sorted((m.namespace, m.rule) for m in compiled.rules.match(data=eicar))
    assert found == [
        ("entity-a/mine.yar", "PUKARA_EICAR_Test_File"),
        ("national/pukara/eicar.yar", "PUKARA_EICAR_Test_File"),
    ]


def test_default_sources_give_each_folder_its_own_name(tmp_path: Path) -> None:
    sources = default_sources([tmp_path / "x", tmp_path / "y" / "x"])
    assert [s.name for s in sources] == ["national", "x", "x-2"]


def test_unreadable_cache_entry_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    write(folder, "a.yar", 'rule A { strings: $a = "alpha" condition: $a }\n')
    first = compile_rules([RuleSource("e", folder)], tmp_path / "cache")
    first.cache_path.write_bytes(b"YARA\x00truncated")
    again = compile_rules([RuleSource("e", folder)], tmp_path / "cache")
    assert again.cache_path == first.cache_path
    assert [
        m.rule for m in load_compiled(again.cache_path, tmp_path / "cache").match(data=b"alpha")
    ] == ["A"]


def write_compile_bomb(folder: Path) -> Path:
    """Constructed: 40 rules of 10,000 strings each (seconds of compile time, 14 MB)."""
    rules = []
    for r in range(40):
        strings = "\n".join(f'    $s{i} = "bomb{r}_{i}_abcdefgh"' for i in range(10_000))
        rules.append(f"rule bomb{r} {{\n  strings:\n{strings}\n  condition: any of them\n}}\n")
    return write(folder, "bomb.yar", "\n".join(rules))


def test_f3_compile_bomb_is_cut_off_and_the_other_files_still_load(tmp_path: Path) -> None:
    folder = tmp_path / "entity"
    bomb = write_compile_bomb(folder)
    write(folder, "fine.yar", 'rule fine { strings: $a = "fine" condition: $a }\n')
    limits = CompileLimits(timeout=1.0)
    compiled = compile_rules([RuleSource("e", folder)], tmp_path / "cache", limits=limits)
    assert [str(e) for e in compiled.errors] == [f"{bomb}: compilation exceeded 1 s"]
    assert compiled.namespaces == ("e/fine.yar",)
    assert [m.rule for m in compiled.rules.match(data=b"fine")] == ["fine"]
