"""The optional yara-x engine: same folders, same namespaces, same result shape.

Files yara-x refuses but yara-python accepts are listed in ``unsupported`` and scanned with
yara-python instead, so switching engines never drops a rule. The security rules of
:mod:`enrichment.yara.compiler` hold here too: includes disabled (yara-x enables them by
default), module allow-list checked on the text and again on the compiled rules' imports,
compiled rules stored and loaded only in our cache (``<key>.yrx``).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yara_x

from enrichment.yara.cache import (
    check_cache_file,
    load_compiled,
    rules_cache_dir,
    write_atomically,
)
from enrichment.yara.compiler import (
    ALLOWED_MODULES,
    DEFAULT_LIMITS,
    EMPTY_EXTERNALS,
    CompiledRules,
    RuleError,
    RuleFile,
    RuleSource,
    cache_key,
    check_modules,
    compile_files,
    discover,
)
from enrichment.yara.externals import escape_bytes
from enrichment.yara.isolate import CompileAborted, CompileLimits, run_isolated
from enrichment.yara.scanner import (
    Matcher,
    RuleMatch,
    ScanLimits,
    Scanner,
    StringMatch,
    WorkerSpec,
    YaraMatcher,
    fd_path,
)
from pukara.core.errors import InvalidInput

_LOCATION = re.compile(r"^\s*--> .*:(?P<line>\d+):\d+\s*$", re.M)


@dataclass
class YaraXCompiled:
    """yara-x rules from our cache, plus yara-python rules for the files yara-x refused."""

    rules: yara_x.Rules
    cache_path: Path
    cache_dir: Path
    key: str
    namespaces: tuple[str, ...]
    unsupported: tuple[RuleError, ...]
    fallback: CompiledRules | None
    errors: tuple[RuleError, ...] = field(default_factory=tuple)


def new_compiler() -> yara_x.Compiler:
    """A yara-x compiler with includes off and Pukara's externals declared."""
    compiler = yara_x.Compiler()
    compiler.enable_includes(False)
    for name, value in EMPTY_EXTERNALS.items():
        compiler.define_global(name, value)
    return compiler


def parse_yarax_error(exc: Exception, file: str) -> RuleError:
    """A located error from yara-x's report (first line is the message, ``-->`` the place)."""
    text = str(exc)
    located = _LOCATION.search(text)
    line = int(located.group("line")) if located else None
    return RuleError(file, line, text.splitlines()[0] if text else type(exc).__name__)


def _try_yarax(rule_file: RuleFile, allowed: frozenset[str]) -> tuple[str | None, RuleError | None]:
    """The file's text if yara-x compiles it within the allow-list, else the refusal."""
    raw = rule_file.path.read_bytes()
    refused = check_modules(raw.decode("latin-1"), str(rule_file.path), allowed)
    if refused is not None:
        return None, refused
    try:
        text = raw.decode("utf-8")
        compiler = new_compiler()
        compiler.add_source(text, origin=str(rule_file.path))
        imports = set(compiler.build().imports())
    except UnicodeDecodeError:
        return None, RuleError(str(rule_file.path), None, "not UTF-8 text (yara-x needs UTF-8)")
    except yara_x.CompileError as exc:
        return None, parse_yarax_error(exc, str(rule_file.path))
    if not imports <= allowed:
        message = f"module(s) {sorted(imports - allowed)} are not allowed"
        return None, RuleError(str(rule_file.path), None, message)
    return text, None


def compile_yarax(
    sources: Sequence[RuleSource],
    cache_dir: Path,
    *,
    allowed_modules: frozenset[str] = ALLOWED_MODULES,
    limits: CompileLimits | None = DEFAULT_LIMITS,
) -> YaraXCompiled:
    """Compile ``sources`` with yara-x (cached); refused files fall back to yara-python.

    With ``limits`` (the default) compilation runs in a capped child process (SECURITY F3).
    """
    files, errors = discover(sources)
    folder = rules_cache_dir(cache_dir)
    key = cache_key(files, allowed_modules, engine="yara-x")
    target, summary_path = folder / f"{key}.yrx", folder / f"{key}.x.json"
    if not (target.exists() and summary_path.exists()):
        _build_isolated(files, allowed_modules, target, summary_path, limits)
    try:
        summary, rules = _load(target, summary_path, cache_dir)
    except Exception:  # an unreadable cache entry is rebuilt once; a refusal then stands
        _build_isolated(files, allowed_modules, target, summary_path, limits)
        summary, rules = _load(target, summary_path, cache_dir)
    errors.extend(RuleError(**error) for error in summary.get("errors", []))
    unsupported = tuple(RuleError(**error) for error in summary["unsupported"])
    fallback_namespaces = set(summary["fallback"])
    fallback_files = [f for f in files if f.namespace in fallback_namespaces]
    fallback = None
    if fallback_files:
        fallback = compile_files(
            fallback_files, cache_dir, allowed_modules=allowed_modules, limits=limits
        )
        errors.extend(fallback.errors)
    return YaraXCompiled(
        rules=rules,
        cache_path=target,
        cache_dir=Path(cache_dir),
        key=key,
        namespaces=tuple(summary["namespaces"]),
        unsupported=unsupported,
        fallback=fallback if fallback and fallback.rule_count else None,
        errors=tuple(errors),
    )


def _load(target: Path, summary_path: Path, cache_dir: Path) -> tuple[dict[str, Any], yara_x.Rules]:
    """The summary and the rules of one cache entry (F2: only from our cache)."""
    summary = json.loads(summary_path.read_text())
    with check_cache_file(target, cache_dir).open("rb") as handle:
        return summary, yara_x.Rules.deserialize_from(handle)


def _build(
    files: Sequence[RuleFile],
    allowed: frozenset[str],
    target: Path,
    summary_path: Path,
    known_errors: Sequence[RuleError] = (),
) -> None:
    """Compile every file yara-x accepts into one ruleset and write it with its summary."""
    built = _build_together(files, allowed)
    if built is None:
        built = _build_one_by_one(files, allowed)
    rules, namespaces, unsupported = built
    buffer = io.BytesIO()
    rules.serialize_into(buffer)
    write_atomically(target, buffer.getvalue())
    refused_paths = {error.file for error in unsupported}
    summary = {
        "namespaces": namespaces,
        "unsupported": [asdict(error) for error in unsupported],
        "fallback": [f.namespace for f in files if str(f.path) in refused_paths],
        "errors": [asdict(error) for error in known_errors],
    }
    write_atomically(summary_path, json.dumps(summary).encode())


def _check_one(rule_file: RuleFile, allowed: frozenset[str]) -> None:
    _try_yarax(rule_file, allowed)


def _build_isolated(
    files: Sequence[RuleFile],
    allowed: frozenset[str],
    target: Path,
    summary_path: Path,
    limits: CompileLimits | None,
) -> None:
    """:func:`_build` in a capped child; files that blow the caps alone are dropped, located."""
    if limits is None:
        _build(files, allowed, target, summary_path)
        return
    try:
        run_isolated(_build, files, allowed, target, summary_path, limits=limits)
        return
    except CompileAborted:
        pass
    keep: list[RuleFile] = []
    dropped: list[RuleError] = []
    for rule_file in files:
        try:
            run_isolated(_check_one, rule_file, allowed, limits=limits)
            keep.append(rule_file)
        except CompileAborted as exc:
            dropped.append(RuleError(str(rule_file.path), None, str(exc)))
    try:
        run_isolated(_build, keep, allowed, target, summary_path, dropped, limits=limits)
    except CompileAborted as exc:
        raise InvalidInput(f"rules refused: {exc}", field="rules") from exc


_Built = tuple[yara_x.Rules, list[str], list[RuleError]]


def _build_together(files: Sequence[RuleFile], allowed: frozenset[str]) -> _Built | None:
    """All files in one go (the common case), or None when any file needs a closer look."""
    compiler = new_compiler()
    try:
        for rule_file in files:
            raw = rule_file.path.read_bytes()
            if check_modules(raw.decode("latin-1"), str(rule_file.path), allowed):
                return None
            compiler.new_namespace(rule_file.namespace)
            compiler.add_source(raw.decode("utf-8"), origin=str(rule_file.path))
        rules = compiler.build()
    except (UnicodeDecodeError, yara_x.CompileError):
        return None
    if not set(rules.imports()) <= allowed:
        return None
    return rules, [f.namespace for f in files], []


def _build_one_by_one(files: Sequence[RuleFile], allowed: frozenset[str]) -> _Built:
    """Each file checked alone; the ones yara-x refuses are listed, the rest compiled."""
    compiler = new_compiler()
    namespaces: list[str] = []
    unsupported: list[RuleError] = []
    for rule_file in files:
        text, refused = _try_yarax(rule_file, allowed)
        if text is None:
            unsupported.append(refused or RuleError(str(rule_file.path), None, "refused"))
            continue
        compiler.new_namespace(rule_file.namespace)
        compiler.add_source(text, origin=str(rule_file.path))
        namespaces.append(rule_file.namespace)
    return compiler.build(), namespaces, unsupported


class YaraXMatcher:
    """A yara-x scanner (timeout set) plus the yara-python fallback rules, if any."""

    def __init__(self, rules: yara_x.Rules, limits: ScanLimits, fallback: Matcher | None) -> None:
        self.scanner = yara_x.Scanner(rules)
        # the first scan sets the engine up (~4 ms); done here, workers forked from this
        # process inherit it. No timeout yet, so yara-x starts no timeout thread here, which
        # would keep this process from forking workers (enrichment.yara.forkpool).
        self.scanner.scan(b"")
        self.scanner.set_timeout(limits.timeout)
        self.limits = limits
        self.fallback = fallback

    def match(self, data: bytes, externals: dict[str, str]) -> list[RuleMatch]:
        """Matches of both engines' rules; yara-x's timeout becomes ``TimeoutError``."""
        results = self._scan(lambda: self.scanner.scan(data), externals)
        matches = [self._convert(rule, lambda m: _matched(data, m)) for rule in results]
        if self.fallback is not None:
            matches.extend(self.fallback.match(data, externals))
        return matches

    def match_fd(self, fd: int, externals: dict[str, str]) -> list[RuleMatch]:
        """Matches of the open file ``fd``; yara-x maps it, evidence is read with pread."""
        results = self._scan(lambda: self.scanner.scan_file(fd_path(fd)), externals)
        keep = self.limits.max_data_bytes
        matches = [
            self._convert(rule, lambda m: os.pread(fd, min(m.length, keep), m.offset))
            for rule in results
        ]
        if self.fallback is not None:
            matches.extend(self.fallback.match_fd(fd, externals))
        return matches

    def _scan(
        self, scan: Callable[[], yara_x.ScanResults], externals: dict[str, str]
    ) -> Sequence[yara_x.Rule]:
        for name, value in externals.items():
            self.scanner.set_global(name, value)
        try:
            return scan().matching_rules
        except yara_x.TimeoutError as exc:
            raise TimeoutError from exc

    def _convert(self, rule: yara_x.Rule, evidence: Callable[[yara_x.Match], bytes]) -> RuleMatch:
        keep, most = self.limits.max_data_bytes, self.limits.max_instances
        strings = [
            StringMatch(p.identifier, m.offset, escape_bytes(evidence(m), keep))
            for p in rule.patterns
            for m in p.matches[:most]
        ]
        meta = dict(rule.metadata)
        return RuleMatch(rule.identifier, rule.namespace, list(rule.tags), meta, strings)


def _matched(data: bytes, match: yara_x.Match) -> bytes:
    return data[match.offset : match.offset + match.length]


def build_yarax_matcher(spec: WorkerSpec) -> YaraXMatcher:
    """Load the yara-x rules (and fallback) named by ``spec`` from our cache only (F2)."""
    with check_cache_file(Path(spec.cache_path), Path(spec.cache_dir)).open("rb") as handle:
        rules = yara_x.Rules.deserialize_from(handle)
    fallback = None
    if spec.fallback_cache_path:
        fallback_rules = load_compiled(Path(spec.fallback_cache_path), Path(spec.cache_dir))
        fallback = YaraMatcher(fallback_rules, spec.limits)
    return YaraXMatcher(rules, spec.limits, fallback)


class YaraXScanner(Scanner):
    """:class:`Scanner` on the yara-x engine; same methods and result shape."""

    engine = "yara-x"

    def __init__(self, compiled: YaraXCompiled, limits: ScanLimits | None = None) -> None:
        self.compiled_x = compiled
        self.limits = limits or ScanLimits()
        fallback = YaraMatcher(compiled.fallback.rules, self.limits) if compiled.fallback else None
        self._matcher = YaraXMatcher(compiled.rules, self.limits, fallback)
        self._pool = None

    def worker_spec(self) -> WorkerSpec:
        """The picklable description workers load both rule sets from."""
        fallback = self.compiled_x.fallback
        return WorkerSpec(
            self.engine,
            str(self.compiled_x.cache_path),
            str(self.compiled_x.cache_dir),
            self.limits,
            str(fallback.cache_path) if fallback else None,
        )
