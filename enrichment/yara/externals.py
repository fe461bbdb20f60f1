"""What rules learn about a file besides its bytes: externals, and how evidence is shown.

Every value here comes from the submitter (name, path) or the file (type, owner) and reaches
rules only as an external variable, never as rule text (SECURITY F6).
"""

from __future__ import annotations

import pwd
from pathlib import PurePath

#: (magic prefix, type) checked in order against a file's first bytes
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "pe"),
    (b"\x7fELF", "elf"),
    (b"%PDF", "pdf"),
    (b"PK\x03\x04", "zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"{\\rtf", "rtf"),
    (b"\xd4\xc3\xb2\xa1", "pcap"),
    (b"\xa1\xb2\xc3\xd4", "pcap"),
    (b"\x0a\x0d\x0d\x0a", "pcapng"),
    (b"\x1f\x8b", "gzip"),
    (b"Rar!", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\xca\xfe\xba\xbe", "macho"),
    (b"\xcf\xfa\xed\xfe", "macho"),
    (b"<?php", "php"),
    (b"#!", "script"),
)
#: the control bytes that make a head "data" rather than text (0x80 and up count as text)
_BINARY_BYTES = bytes(set(range(0x20)) - {0x09, 0x0A, 0x0D}) + b"\x7f"
HEAD_BYTES = 64


def _escaped(byte: int) -> str:
    if byte == 0x5C:
        return "\\\\"
    return chr(byte) if 0x20 <= byte < 0x7F else f"\\x{byte:02x}"


#: latin-1 code point -> how :func:`escape_bytes` shows that byte (one C-level translate)
_ESCAPES = {byte: _escaped(byte) for byte in range(256)}


def escape_bytes(data: bytes, limit: int) -> str:
    """Printable ASCII kept, everything else as ``\\xHH``; at most ``limit`` input bytes."""
    return data[:limit].decode("latin-1").translate(_ESCAPES)


def guess_filetype(head: bytes) -> str:
    """A cheap type name from the first bytes: pe, elf, pdf, zip, ole, … text or data."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if not head:
        return "empty"
    binary = len(head.translate(None, _BINARY_BYTES)) != len(head)
    return "data" if binary else "text"


_OWNERS: dict[int, str] = {}


def owner_name(uid: int) -> str:
    """The user name of ``uid`` (cached), or the number when it has no name."""
    if uid not in _OWNERS:
        try:
            _OWNERS[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _OWNERS[uid] = str(uid)
    return _OWNERS[uid]


def _base_name(name: str) -> str:
    """``PurePath(name).name`` without building a path (this runs once per scanned file)."""
    base = name.rpartition("/")[2]
    return base if base not in ("", ".", "..") else PurePath(name).name


def externals_for(name: str, head: bytes, owner: str = "") -> dict[str, str]:
    """The external variables for one file or payload (SECURITY F6)."""
    base = _base_name(name)
    dot = base.rfind(".")
    extension = base[dot + 1 :].lower() if 0 < dot < len(base) - 1 else ""
    return {
        "filename": base,
        "filepath": name,
        "extension": extension,
        "filetype": guess_filetype(head[:HEAD_BYTES]),
        "owner": owner,
    }
