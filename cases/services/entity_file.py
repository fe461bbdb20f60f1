"""Entities from YAML files (``pukara entity import``, the demo constituency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pukara.core.errors import InvalidInput
from pukara.core.schema import Entity


def entity_from_dict(data: dict[str, Any], where: str) -> Entity:
    """An Entity from a mapping; the first error names its field and where."""
    try:
        return Entity.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {location}: {first['msg']}", field=location) from None


def load_entities_file(path: Path) -> list[Entity]:
    """Entities from a YAML file: a list, or a mapping with an ``entities`` list."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read entities: {exc}") from None
    if isinstance(data, dict):
        data = data.get("entities")
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: expected a list of entities (or 'entities:' list)")
    return [entity_from_dict(item, f"{path} entry {n}") for n, item in enumerate(data, 1)]


