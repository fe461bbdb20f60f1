"""Compile YARA rule folders safely: one namespace per file, cached by content.

Security (SECURITY.md, section F):

* F1: ``includes=False``; an ``include`` is refused at its line and the message never shows
  what the included path holds or whether it exists. Symbolic links in rule folders are not
  followed, so a link to ``/etc/passwd`` cannot leak through a syntax error either.
* F2: compiled rules are written by us, under our cache directory only, and
  :func:`load_compiled` refuses any other file. A ``.yarc`` found in a rule folder is refused.
* F4: only allow-listed modules may be imported (checked on the raw text, so a module name
  hidden in an escape or a comment is refused, never let through).
* F5: every file lives in its own namespace ``<source>/<relative path>``, so an entity rule
  named like a national rule cannot shadow it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yara

from enrichment.yara.cache import load_compiled, rules_cache_dir, write_atomically
from enrichment.yara.isolate import CompileAborted, CompileLimits, run_isolated
from pukara.core.errors import InvalidInput

#: modules a rule may import (SECURITY F4); console, cuckoo and magic are refused
ALLOWED_MODULES = frozenset({"pe", "elf", "math", "hash", "time", "string", "dotnet"})
#: external variables every compile declares and every scan sets (SECURITY F6)
EXTERNAL_NAMES = ("filename", "filepath", "extension", "filetype", "owner")
EMPTY_EXTERNALS: dict[str, str] = dict.fromkeys(EXTERNAL_NAMES, "")
RULE_SUFFIXES = frozenset({".yar", ".yara"})
COMPILED_SUFFIXES = frozenset({".yarc", ".yrx"})
#: the magic of a compiled libyara file: refused even when it is named ``.yar``
COMPILED_MAGIC = b"YARA"
DEFAULT_LIMITS = CompileLimits()
_IMPORT = re.compile(r'\bimport(?:\s|/\*.*?\*/|//[^\n]*)*"([^"]*)"', re.S)
_FILE_LINE = re.compile(r"^(?P<file>.*)\((?P<line>\d+)\): (?P<message>.*)$", re.S)
_LINE = re.compile(r"^line (?P<line>\d+): (?P<message>.*)$", re.S)


@dataclass(frozen=True)
class RuleSource:
    """A folder (or one file) of rules and the name its namespaces start with."""

    name: str
    root: Path


@dataclass(frozen=True)
class RuleFile:
    """One rule file found in a source."""

    namespace: str
    path: Path
    digest: str


@dataclass(frozen=True)
class RuleError:
    """A rule file that was refused or did not compile, located by file and line."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class CompiledRules:
    """Rules compiled from source files and stored in our cache."""

    rules: yara.Rules
    cache_path: Path
    cache_dir: Path
    key: str
    namespaces: tuple[str, ...]
    rule_count: int
    errors: tuple[RuleError, ...] = field(default_factory=tuple)


def national_source() -> RuleSource:
    """The rule set shipped in the ``rules`` package, under the ``national`` namespace."""
    import rules

    # an editable install made before rules/__init__.py existed maps ``rules`` as a namespace
    # package; its first path entry is still the folder
    finder = getattr(rules, "rules_dir", None)
    root = finder() if finder else Path(next(iter(rules.__path__)))
    return RuleSource("national", root)


def default_sources(extra_dirs: Iterable[Path] = (), *, national: bool = True) -> list[RuleSource]:
    """The shipped rules (unless ``national=False``) plus folders, each its own source name."""
    sources = [national_source()] if national else []
    names = {source.name for source in sources}
    for directory in extra_dirs:
        name = base = Path(directory).name or "local"
        suffix = 2
        while name in names:
            name, suffix = f"{base}-{suffix}", suffix + 1
        names.add(name)
        sources.append(RuleSource(name, Path(directory)))
    return sources


def is_compiled_rules(path: Path) -> bool:
    """True for a compiled-rules file (by suffix or by the libyara / yara-x magic)."""
    if Path(path).suffix.lower() in COMPILED_SUFFIXES:
        return True
    if not Path(path).is_file():
        return False
    with Path(path).open("rb") as handle:
        return handle.read(len(COMPILED_MAGIC)) == COMPILED_MAGIC


def discover(sources: Sequence[RuleSource]) -> tuple[list[RuleFile], list[RuleError]]:
    """Every rule file of ``sources`` in a stable order, and the entries refused outright."""
    files: list[RuleFile] = []
    errors: list[RuleError] = []
    for source in sources:
        root = Path(source.root)
        if not root.exists():  # a configured root may be a link; links inside it are refused
            errors.append(RuleError(str(root), None, "no such rule folder or file"))
            continue
        candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*"))
        base = root.parent if root.is_file() else root
        for path in candidates:
            relative = path.relative_to(base).as_posix()
            refused = _refusal(path)
            if refused:
                errors.append(RuleError(str(path), None, refused))
            elif path.suffix.lower() in RULE_SUFFIXES and path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                files.append(RuleFile(f"{source.name}/{relative}", path, digest))
    return files, errors


def _refusal(path: Path) -> str | None:
    """Why ``path`` may not be read as rule source, or None."""
    if path.is_symlink():
        return "symbolic links in rule folders are not followed"
    if path.suffix.lower() in COMPILED_SUFFIXES | RULE_SUFFIXES and is_compiled_rules(path):
        return "compiled rules are refused; submit rule source (.yar)"
    return None


def check_modules(
    text: str, file: str, allowed: frozenset[str] = ALLOWED_MODULES
) -> RuleError | None:
    """The first import of a module outside ``allowed`` in ``text`` (SECURITY F4), or None."""
    for found in _IMPORT.finditer(text):
        module = found.group(1)
        if module not in allowed:
            line = text.count("\n", 0, found.start()) + 1
            return RuleError(
                file,
                line,
                f"module {module!r} is not allowed (allowed: {', '.join(sorted(allowed))})",
            )
    return None


def parse_yara_error(exc: Exception, file: str) -> RuleError:
    """A located error from libyara's ``file(line): message`` or ``line N: message`` text."""
    text = str(exc)
    located = _FILE_LINE.match(text) or _LINE.match(text)
    if located is None:
        return RuleError(file, None, text)
    return RuleError(file, int(located.group("line")), located.group("message"))


def validate(
    files: Sequence[RuleFile], allowed: frozenset[str]
) -> tuple[list[RuleFile], list[RuleError]]:
    """The files that pass the module allow-list and compile alone with yara-python."""
    good: list[RuleFile] = []
    errors: list[RuleError] = []
    allowed_files, refused = check_files(files, allowed)
    for rule_file in allowed_files:
        try:
            yara.compile(filepath=str(rule_file.path), externals=EMPTY_EXTERNALS, includes=False)
        except yara.Error as exc:
            errors.append(parse_yara_error(exc, str(rule_file.path)))
            continue
        good.append(rule_file)
    return good, refused + errors


def check_files(
    files: Sequence[RuleFile], allowed: frozenset[str]
) -> tuple[list[RuleFile], list[RuleError]]:
    """The files whose imports are all allow-listed, and the refusals of the others."""
    good: list[RuleFile] = []
    errors: list[RuleError] = []
    for rule_file in files:
        text = rule_file.path.read_bytes().decode("latin-1")
        refused = check_modules(text, str(rule_file.path), allowed)
        if refused is None:
            good.append(rule_file)
        else:
            errors.append(refused)
    return good, errors


def _compile_together(
    files: Sequence[RuleFile], allowed: frozenset[str]
) -> tuple[yara.Rules, list[RuleFile], list[RuleError]]:
    """One ruleset of every usable file; files are tried one by one only if that fails."""
    good, errors = check_files(files, allowed)
    try:
        together = {f.namespace: str(f.path) for f in good}
        rules = yara.compile(filepaths=together, externals=EMPTY_EXTERNALS, includes=False)
        return rules, good, errors
    except yara.Error:
        good, errors = validate(files, allowed)
    rules = yara.compile(
        filepaths={f.namespace: str(f.path) for f in good},
        externals=EMPTY_EXTERNALS,
        includes=False,
    )
    return rules, good, errors


def cache_key(files: Sequence[RuleFile], allowed: frozenset[str], engine: str = "yara") -> str:
    """A hash of every file's namespace and content, the engine version and the allow-list."""
    version = yara.__version__ if engine == "yara" else _yarax_version()
    material = {
        "engine": engine,
        "version": version,
        "modules": sorted(allowed),
        "externals": list(EXTERNAL_NAMES),
        "files": [(f.namespace, f.digest) for f in files],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _yarax_version() -> str:
    from importlib.metadata import version

    return version("yara-x")


def compile_rules(
    sources: Sequence[RuleSource],
    cache_dir: Path,
    *,
    allowed_modules: frozenset[str] = ALLOWED_MODULES,
    limits: CompileLimits | None = DEFAULT_LIMITS,
) -> CompiledRules:
    """Compile ``sources`` (or take them from the cache); bad files are reported, not fatal.

    With ``limits`` (the default) compilation runs in a capped child process (SECURITY F3).
    """
    files, errors = discover(sources)
    compiled = compile_files(files, cache_dir, allowed_modules=allowed_modules, limits=limits)
    compiled.errors = tuple(errors) + compiled.errors
    return compiled


def compile_files(
    files: Sequence[RuleFile],
    cache_dir: Path,
    *,
    allowed_modules: frozenset[str] = ALLOWED_MODULES,
    limits: CompileLimits | None = DEFAULT_LIMITS,
) -> CompiledRules:
    """Compile already discovered files, reusing the cache when nothing changed."""
    loaded = _load_entry(files, cache_dir, allowed_modules)
    if loaded is None:
        if limits is None:
            store_entry(files, files, Path(cache_dir), allowed_modules, [])
        else:
            _store_isolated(files, Path(cache_dir), allowed_modules, limits)
        loaded = _load_entry(files, cache_dir, allowed_modules)
    if loaded is None:
        raise InvalidInput("the compiled rules could not be stored in the cache", field="rules")
    return loaded


def _load_entry(
    files: Sequence[RuleFile], cache_dir: Path, allowed: frozenset[str]
) -> CompiledRules | None:
    """The cache entry of exactly these files, or None when missing or unreadable."""
    key = cache_key(files, allowed)
    folder = rules_cache_dir(cache_dir)
    target, summary_path = folder / f"{key}.yarc", folder / f"{key}.json"
    if not (target.exists() and summary_path.exists()):
        return None
    try:
        summary = json.loads(summary_path.read_text())
        return CompiledRules(
            rules=load_compiled(target, cache_dir),
            cache_path=target,
            cache_dir=Path(cache_dir),
            key=key,
            namespaces=tuple(summary["namespaces"]),
            rule_count=summary["rule_count"],
            errors=tuple(RuleError(**error) for error in summary["errors"]),
        )
    except (yara.Error, ValueError, KeyError, TypeError):
        return None  # unreadable entry: the caller rebuilds it


def store_entry(
    key_files: Sequence[RuleFile],
    files: Sequence[RuleFile],
    cache_dir: Path,
    allowed: frozenset[str],
    known_errors: Sequence[RuleError],
) -> None:
    """Compile ``files`` and write them as the cache entry of ``key_files`` (runs isolated)."""
    folder = rules_cache_dir(cache_dir)
    key = cache_key(key_files, allowed)
    rules, good, errors = _compile_together(files, allowed)
    buffer = io.BytesIO()
    rules.save(file=buffer)
    write_atomically(folder / f"{key}.yarc", buffer.getvalue())
    summary = {
        "namespaces": [f.namespace for f in good],
        "rule_count": sum(1 for _ in rules),
        "errors": [asdict(error) for error in [*known_errors, *errors]],
    }
    write_atomically(folder / f"{key}.json", json.dumps(summary).encode())


def check_one(rule_file: RuleFile) -> None:
    """Compile one file alone; its syntax errors are reported later, only hangs matter here."""
    with suppress(yara.Error):
        yara.compile(filepath=str(rule_file.path), externals=EMPTY_EXTERNALS, includes=False)


def _store_isolated(
    files: Sequence[RuleFile], cache_dir: Path, allowed: frozenset[str], limits: CompileLimits
) -> None:
    """Compile in a capped child; if that fails, find the files that blow the caps, drop them."""
    try:
        run_isolated(store_entry, files, files, cache_dir, allowed, [], limits=limits)
        return
    except CompileAborted:
        pass
    keep: list[RuleFile] = []
    dropped: list[RuleError] = []
    for rule_file in files:
        try:
            run_isolated(check_one, rule_file, limits=limits)
            keep.append(rule_file)
        except CompileAborted as exc:
            dropped.append(RuleError(str(rule_file.path), None, str(exc)))
    try:
        run_isolated(store_entry, files, keep, cache_dir, allowed, dropped, limits=limits)
    except CompileAborted as exc:
        raise InvalidInput(f"rules refused: {exc}", field="rules") from exc
