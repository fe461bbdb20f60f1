"""Every parser class is registered under ``pukara.parsers`` and every entry point loads.

An entry point whose module file does not exist yet (another engineer's parser still being
written) is skipped; one whose module exists but does not load, or names the wrong class,
fails.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import collectors.parsers
from collectors.parsers.base import Parser

PARSERS_DIR = Path(collectors.parsers.__file__).parent
ENTRY_POINTS = sorted(entry_points(group="pukara.parsers"), key=lambda ep: ep.name)
SOURCE_ENTRY_POINTS = sorted(entry_points(group="pukara.sources"), key=lambda ep: ep.name)


def _module_file(value: str) -> Path:
    module = value.split(":", maxsplit=1)[0]
    return PARSERS_DIR.parent.parent.joinpath(*module.split(".")).with_suffix(".py")


def _parser_classes() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PARSERS_DIR.glob("*.py")):
        if path.stem in ("base", "__init__"):
            continue
        module = importlib.import_module(f"collectors.parsers.{path.stem}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            has_protocol = all(callable(getattr(cls, attr, None)) for attr in ("sniff", "parse"))
            if has_protocol and isinstance(getattr(cls, "name", None), str):
                found.append((module.__name__, name))
    return found


def test_every_parser_class_is_registered() -> None:
    registered = {ep.value for ep in ENTRY_POINTS}
    classes = _parser_classes()
    assert ("collectors.parsers.suricata", "SuricataEveParser") in classes
    missing = [
        f"{module}:{name}" for module, name in classes if f"{module}:{name}" not in registered
    ]
    assert missing == [], f"parser classes without a pukara.parsers entry point: {missing}"


@pytest.mark.parametrize("ep", ENTRY_POINTS, ids=lambda ep: ep.name)
def test_every_parser_entry_point_loads(ep) -> None:
    if not _module_file(ep.value).exists():
        pytest.skip(f"{ep.value}: module not written yet")
    cls = ep.load()
    instance = cls()
    assert isinstance(instance, Parser)
    assert cls.name == ep.name
    assert isinstance(cls.priority, int)
    assert isinstance(instance.sniff(b""), bool)


@pytest.mark.parametrize("ep", SOURCE_ENTRY_POINTS, ids=lambda ep: ep.name)
def test_every_source_entry_point_loads(ep) -> None:
    if not _module_file(ep.value).exists():
        pytest.skip(f"{ep.value}: module not written yet")
    cls = ep.load()
    assert cls.name == ep.name


def test_specific_formats_sniff_before_generic_ones() -> None:
    from collectors.registry import all_parsers

    order = [p.name for p in all_parsers()]
    for specific in ("suricata", "zeek", "intelmq", "wazuh", "alerts"):
        if specific in order:
            assert order.index(specific) < order.index("json") < order.index("csv")
