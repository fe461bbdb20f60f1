"""Pick an engine: one call gives a ready scanner and the rule files it had to leave out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from enrichment.yara.compiler import RuleError, RuleSource, compile_rules
from enrichment.yara.scanner import ScanLimits, Scanner
from pukara.core.errors import ConfigError

ENGINES = ("yara", "yara-x")


def open_scanner(
    sources: Sequence[RuleSource],
    cache_dir: Path,
    *,
    engine: str = "yara",
    limits: ScanLimits | None = None,
) -> tuple[Scanner, tuple[RuleError, ...], tuple[RuleError, ...]]:
    """A scanner for ``engine`` over ``sources``, the rule errors, and (yara-x) fallbacks.

    The third item lists files yara-x refused that are scanned with yara-python instead.
    """
    if engine == "yara":
        compiled = compile_rules(sources, cache_dir)
        return Scanner(compiled, limits), compiled.errors, ()
    if engine == "yara-x":
        from enrichment.yara.yarax import YaraXScanner, compile_yarax

        compiled_x = compile_yarax(sources, cache_dir)
        return YaraXScanner(compiled_x, limits), compiled_x.errors, compiled_x.unsupported
    raise ConfigError(f"unknown YARA engine {engine!r}; known: {', '.join(ENGINES)}")
