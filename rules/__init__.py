"""Pukara's shipped YARA rules (data only; see README.md for origin and licence of each file)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["rules_dir"]


def rules_dir() -> Path:
    """The folder holding the shipped ``*.yar`` files, one sub-folder per source."""
    return Path(__file__).resolve().parent
