"""Cheap L2–L4 decoding of raw captured frames, and bounded pcap/pcapng record readers.

Reading is scapy's ``RawPcapReader`` / ``RawPcapNgReader`` (subclassed so that a truncated
record, a corrupt record header, ``caplen > len`` or an unknown pcapng block is *reported*
with its record number instead of silently ending the file). Decoding is ours: Ethernet
(with 802.1Q/802.1ad tags), Linux cooked (SLL, SLL2), BSD loopback and raw IP, then IPv4 /
IPv6 (extension headers skipped) and TCP/UDP headers with ``struct``. Only the packets that
carry DNS, an HTTP request head or a TLS ClientHello are handed to heavier dissectors.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from scapy.utils import RawPcapNgReader, RawPcapReader

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
#: the largest record or block we accept; bigger is a corrupt header, not a packet
MAX_RECORD = 256 * 1024
#: how much of a packet we keep (scapy's MTU bound)
MAX_PACKET = 65535

PROTO_ARP = -1
TCP, UDP = 6, 17
_VLAN = frozenset((0x8100, 0x88A8, 0x9100))
_IPV6_EXT = frozenset((0, 43, 60, 51, 135))
_LOOPBACK_V6 = frozenset((24, 28, 30))
#: standard pcapng blocks scapy does not read and we do not need (NRB, ISB, journal, custom)
_IGNORED_BLOCKS = frozenset((4, 5, 7, 8, 9, 0x00000BAD, 0x40000BAD))

_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_TCP = struct.Struct("!HHIIBB")
_L_I = struct.Struct("<I")
_B_I = struct.Struct(">I")


class RecordError(Exception):
    """A record that cannot be read. ``fatal``: reading cannot go on past it."""

    def __init__(self, reason: str, record: int | None = None, fatal: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.record = record
        self.fatal = fatal


class Frame(NamedTuple):
    """One captured frame: its record number, timestamp, link type and bytes."""

    number: int
    ts: float
    linktype: int
    data: bytes
    caplen: int
    wirelen: int


class Decoded(NamedTuple):
    """The L3/L4 facts of one packet (for ARP: ``proto`` PROTO_ARP, ``flags`` the opcode)."""

    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    flags: int
    seq: int
    payload: bytes


_names: dict[bytes, str] = {}


def _addr(raw: bytes) -> str:
    name = _names.get(raw)
    if name is None:
        if len(_names) > 200_000:
            _names.clear()
        family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
        name = _names[raw] = socket.inet_ntop(family, raw)
    return name


def _l3_start(linktype: int, data: bytes) -> tuple[int, int]:
    """``(ethertype, offset)`` of the network layer, or ``(0, 0)`` if unknown."""
    if linktype == 1:
        if len(data) < 14:
            return 0, 0
        etype = (data[12] << 8) | data[13]
        offset = 14
        while etype in _VLAN and len(data) >= offset + 4:
            etype = (data[offset + 2] << 8) | data[offset + 3]
            offset += 4
        return etype, offset
    if linktype in (101, 12, 14, 228, 229):
        return (0x86DD if data[:1] and data[0] >> 4 == 6 else 0x0800), 0
    if linktype == 113 and len(data) >= 16:
        return (data[14] << 8) | data[15], 16
    if linktype == 276 and len(data) >= 20:
        return (data[0] << 8) | data[1], 20
    if linktype in (0, 108) and len(data) >= 4:
        family = _L_I.unpack_from(data)[0] if linktype == 0 else _B_I.unpack_from(data)[0]
        if family > 0xFFFF:
            family = _B_I.unpack_from(data)[0]
        return (0x0800 if family == 2 else 0x86DD if family in _LOOPBACK_V6 else 0), 4
    return 0, 0


def decode(linktype: int, data: bytes) -> Decoded | None:
    """Decode one frame to its IP 5-tuple, TCP flags/seq and L4 payload (None if not IP/ARP)."""
    etype, off = _l3_start(linktype, data)
    if etype == 0x0800:
        if len(data) < off + 20 or data[off] >> 4 != 4:
            return None
        ihl = (data[off] & 15) * 4
        end = min(len(data), off + ((data[off + 2] << 8) | data[off + 3]))
        proto = data[off + 9]
        src, dst = _addr(data[off + 12 : off + 16]), _addr(data[off + 16 : off + 20])
        if ((data[off + 6] & 0x1F) << 8) | data[off + 7]:
            return Decoded(src, dst, proto, 0, 0, 0, 0, b"")
        return _l4(src, dst, proto, data, off + ihl, end)
    if etype == 0x86DD:
        if len(data) < off + 40:
            return None
        proto = data[off + 6]
        end = min(len(data), off + 40 + ((data[off + 4] << 8) | data[off + 5]))
        src, dst = _addr(data[off + 8 : off + 24]), _addr(data[off + 24 : off + 40])
        pos = off + 40
        for _ in range(8):
            if proto == 44:
                return Decoded(src, dst, proto, 0, 0, 0, 0, b"")
            if proto not in _IPV6_EXT or pos + 2 > end:
                break
            proto = data[pos]
            pos += (data[pos + 1] + 2) * 4 if proto == 51 else (data[pos + 1] + 1) * 8
        return _l4(src, dst, proto, data, pos, end)
    if etype == 0x0806 and len(data) >= off + 28 and data[off + 7] in (1, 2):
        sender, target = _addr(data[off + 14 : off + 18]), _addr(data[off + 24 : off + 28])
        return Decoded(sender, target, PROTO_ARP, 0, 0, data[off + 7], 0, b"")
    return None


def _l4(src: str, dst: str, proto: int, data: bytes, pos: int, end: int) -> Decoded:  # noqa: PLR0917
    if proto == TCP and end >= pos + 20:
        sport, dport, seq, _ack, doff, flags = _TCP.unpack_from(data, pos)
        return Decoded(src, dst, TCP, sport, dport, flags, seq, data[pos + (doff >> 4) * 4 : end])
    if proto == UDP and end >= pos + 8:
        sport, dport = _HH.unpack_from(data, pos)
        return Decoded(src, dst, UDP, sport, dport, 0, 0, data[pos + 8 : end])
    return Decoded(src, dst, proto, 0, 0, 0, 0, b"")


class _PcapRecords(RawPcapReader):
    """scapy's pcap reader, reporting damaged records instead of stopping quietly."""

    def _read_packet(  # type: ignore[override]
        self, size: int = MAX_PACKET
    ) -> tuple[bytes, tuple[int, int, int, int]]:
        hdr = self.f.read(16)
        if len(hdr) < 16:
            if hdr:
                raise RecordError(f"truncated record header ({len(hdr)} of 16 bytes)")
            raise EOFError
        sec, frac, caplen, wirelen = struct.unpack(self.endian + "IIII", hdr)
        if caplen > MAX_RECORD:
            raise RecordError(f"corrupt record header: caplen {caplen} exceeds {MAX_RECORD}")
        data = self.f.read(caplen)
        if len(data) < caplen:
            raise RecordError(f"truncated record: {len(data)} of {caplen} bytes")
        return data[:size], (sec, frac, caplen, wirelen)


class _PcapNgRecords(RawPcapNgReader):
    """scapy's pcapng reader with bounded blocks; unknown block types are noted, not lost."""

    def __init__(self, filename: str, fdesc: IO[bytes], magic: bytes) -> None:
        self.unknown_blocks: list[int] = []
        super().__init__(filename, fdesc, magic)

    def _read_block_shb(self) -> None:
        """Bound the section header's length before scapy reads its options."""
        head = self.f.read(8)
        self.f.seek(-len(head), 1)
        order = {b"\x1a\x2b\x3c\x4d": ">", b"\x4d\x3c\x2b\x1a": "<"}.get(head[4:8])
        if order is not None:
            length = struct.unpack(order + "I", head[:4])[0]
            if length > MAX_RECORD:
                raise RecordError(f"corrupt section header: block length {length}")
        super()._read_block_shb()

    def _read_block(self, size: int = MAX_PACKET) -> Any:
        head = self.f.read(8)
        if len(head) < 8:
            if head:
                raise RecordError(f"truncated block header ({len(head)} of 8 bytes)")
            raise EOFError
        blocktype, blocklen = struct.unpack(self.endian + "II", head)
        if blocktype == 0x0A0D0D0A:
            self.f.seek(-4, 1)
            self._read_block_shb()
            return None
        if blocklen < 12 or blocklen > MAX_RECORD:
            raise RecordError(f"corrupt block header: block length {blocklen}")
        body = self.f.read(blocklen - 12)
        if len(body) != blocklen - 12:
            raise RecordError(f"truncated block: {len(body)} of {blocklen - 12} body bytes")
        try:
            self._read_block_tail(blocklen)
        except EOFError as exc:
            raise RecordError(f"corrupt block trailer ({exc or 'short read'})") from None
        if blocktype not in self.blocktypes:
            if blocktype not in _IGNORED_BLOCKS:
                self.unknown_blocks.append(blocktype)
            return None
        return self.blocktypes[blocktype](body, size)


def _new(cls: type, name: str, stream: IO[bytes], magic: bytes) -> Any:
    reader: Any = object.__new__(cls)  # scapy's metaclass would re-open the stream; we did already
    reader.__init__(name, stream, magic)
    return reader


def capture_kind(head: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"`` or None, from the first four bytes."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return None


def iter_frames(stream: IO[bytes], name: str) -> Iterator[Frame | RecordError]:
    """Stream frames; a damaged record ends the stream with a RecordError (never raised).

    An unreadable file header also comes out as a RecordError (record 0). For pcapng, an
    unknown block type yields a RecordError naming the block and reading goes on.
    """
    magic = stream.read(4)
    kind = capture_kind(magic)
    try:
        if kind == "pcap":
            reader = _new(_PcapRecords, name, stream, magic)
        elif kind == "pcapng":
            reader = _new(_PcapNgRecords, name, stream, magic)
        else:
            yield RecordError(f"not a pcap or pcapng file (magic {magic.hex() or 'empty'})", 0)
            return
    except Exception as exc:  # scapy raises its own and struct errors for bad headers
        yield RecordError(f"unreadable {kind} file header: {exc}", 0)
        return
    if kind == "pcap":
        yield from _pcap_frames(reader)
    else:
        yield from _pcapng_frames(reader)


def _pcap_frames(reader: Any) -> Iterator[Frame | RecordError]:
    linktype = reader.linktype
    scale = 1e-9 if reader.nano else 1e-6
    read = reader._read_packet
    number = 0
    while True:
        number += 1
        try:
            data, (sec, frac, caplen, wirelen) = read()
        except EOFError:
            return
        except RecordError as exc:
            exc.record = number
            yield exc
            return
        if caplen > wirelen:
            yield RecordError(f"caplen {caplen} > len {wirelen}: record skipped", number, False)
            continue
        yield Frame(number, sec + frac * scale, linktype, data, caplen, wirelen)


def _pcapng_frames(reader: Any) -> Iterator[Frame | RecordError]:
    read = reader._read_packet
    unknown = reader.unknown_blocks
    number = 0
    while True:
        try:
            data, meta = read()
        except EOFError:
            yield from _unknown_blocks(unknown, number + 1)
            return
        except RecordError as exc:
            yield from _unknown_blocks(unknown, number + 1)
            exc.record = number + 1
            yield exc
            return
        except Exception as exc:  # a malformed known block inside scapy
            yield RecordError(f"malformed block: {exc!r}", number + 1)
            return
        number += 1
        yield from _unknown_blocks(unknown, number)
        if len(data) > meta.wirelen:
            reason = f"caplen {len(data)} > len {meta.wirelen}: record skipped"
            yield RecordError(reason, number, False)
            continue
        ts = ((meta.tshigh or 0) << 32 | (meta.tslow or 0)) / (meta.tsresol or 1_000_000)
        yield Frame(number, ts, meta.linktype, data, len(data), meta.wirelen)


def _unknown_blocks(unknown: list[int], number: int) -> Iterator[RecordError]:
    while unknown:
        block = unknown.pop(0)
        yield RecordError(f"unknown pcapng block type 0x{block:08x} skipped", number, False)
