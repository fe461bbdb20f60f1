"""Our compiled-rules cache: a private folder, atomic 0600 writes, the only place rules load from.

SECURITY F2: compiled YARA rules are code-like input to libyara and yara-x; we load them only
from files we wrote ourselves in ``<cache_dir>/yara`` (owned by us, writable by nobody else,
named by their content key). Anything else is refused outright.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

import yara

from pukara.core.errors import ConfigError, InvalidInput

CACHE_SUBDIR = "yara"
_CACHE_NAME = re.compile(r"^[0-9a-f]{64}\.(yarc|yrx)$")


def rules_cache_dir(cache_dir: Path) -> Path:
    """Our compiled-rules folder under ``cache_dir``, created private (0700)."""
    folder = Path(cache_dir) / CACHE_SUBDIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_uid != os.getuid():
        raise ConfigError(f"compiled-rules cache {folder} belongs to another user")
    folder.chmod(0o700)
    return folder


def write_atomically(target: Path, payload: bytes) -> None:
    """Write ``payload`` to ``target`` through a 0600 temp file and ``os.replace``."""
    descriptor, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).chmod(0o600)
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def check_cache_file(path: Path, cache_dir: Path) -> Path:
    """``path`` if it is a compiled-rules file we wrote in our cache; refuse anything else (F2)."""
    refusal = InvalidInput(
        "compiled YARA rules are only loaded from Pukara's own cache; submit rule source instead",
        field="rules",
    )
    folder = (Path(cache_dir) / CACHE_SUBDIR).resolve()
    candidate = Path(path)
    if candidate.is_symlink() or not _CACHE_NAME.match(candidate.name):
        raise refusal
    resolved = candidate.resolve()
    if resolved.parent != folder or not resolved.is_file():
        raise refusal
    if not (_private(folder) and _private(resolved)):
        raise refusal
    return resolved


def _private(path: Path) -> bool:
    """Owned by us and writable by nobody else."""
    info = path.stat()
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def load_compiled(path: Path, cache_dir: Path) -> yara.Rules:
    """Load compiled rules, only from a file :func:`compile_rules` wrote under ``cache_dir``."""
    return yara.load(filepath=str(check_cache_file(path, cache_dir)))
