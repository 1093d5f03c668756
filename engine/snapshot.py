"""Snapshot files: the whole engine state at one journal position, written atomically.

A snapshot holds named sections of opaque bytes (each book's native snapshot, risk state, id
counters, session output sequence numbers, ...) and the last sequence number it covers. Recovery
loads the newest *valid* snapshot and replays the journal after it.

File format (little endian), version 1::

    magic "CIFTSNP1" | version u32 | seq u64 | sections u32
    section* = name_len u16 | name (utf-8) | data_len u64 | data
    crc32 u32 (zlib CRC-32 of every byte before it)

Writes go to a temporary file that is fsynced, renamed into place, and the directory fsynced, so a
crash leaves either the old set of snapshots or the old set plus the complete new one.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Snapshot", "SnapshotError", "list_snapshots", "load_latest", "prune", "write_snapshot"]

log = logging.getLogger(__name__)

MAGIC = b"CIFTSNP1"
VERSION = 1
SUFFIX = ".snap"
_HEAD = struct.Struct("<8sIQI")
_NAME = struct.Struct("<H")
_LEN = struct.Struct("<Q")
_CRC = struct.Struct("<I")


class SnapshotError(Exception):
    """A snapshot file is unreadable (truncated, bad checksum, unknown version)."""


@dataclass(frozen=True)
class Snapshot:
    """Engine state covering every journaled command with sequence number <= ``seq``."""

    seq: int
    sections: Mapping[str, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        parts = [_HEAD.pack(MAGIC, VERSION, self.seq, len(self.sections))]
        for name in sorted(self.sections):
            raw = name.encode()
            data = self.sections[name]
            parts += [_NAME.pack(len(raw)), raw, _LEN.pack(len(data)), data]
        body = b"".join(parts)
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def decode(cls, data: bytes) -> Snapshot:
        if len(data) < _HEAD.size + _CRC.size:
            raise SnapshotError("truncated snapshot")
        (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
        body = memoryview(data)[: len(data) - _CRC.size]
        if zlib.crc32(body) != crc:
            raise SnapshotError("snapshot checksum mismatch")
        magic, version, seq, count = _HEAD.unpack_from(body, 0)
        if magic != MAGIC:
            raise SnapshotError("not a snapshot file")
        if version != VERSION:
            raise SnapshotError(f"snapshot version {version} is not supported")
        off = _HEAD.size
        sections: dict[str, bytes] = {}
        try:
            for _ in range(count):
                (n,) = _NAME.unpack_from(body, off)
                off += _NAME.size
                name = bytes(body[off : off + n]).decode()
                off += n
                (size,) = _LEN.unpack_from(body, off)
                off += _LEN.size
                if off + size > len(body):
                    raise SnapshotError("section overruns the snapshot")
                sections[name] = bytes(body[off : off + size])
                off += size
        except (struct.error, UnicodeDecodeError) as e:
            raise SnapshotError(f"malformed snapshot: {e}") from e
        if off != len(body):
            raise SnapshotError("trailing bytes after the last section")
        return cls(seq=seq, sections=sections)


def _path(directory: Path, seq: int) -> Path:
    return directory / f"snapshot-{seq:020d}{SUFFIX}"


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    """Snapshot files in ``directory``, oldest first (by covered sequence number)."""
    found: list[tuple[int, Path]] = []
    if not directory.is_dir():
        return found
    for p in directory.iterdir():
        if p.suffix == SUFFIX and p.stem.startswith("snapshot-"):
            try:
                found.append((int(p.stem.removeprefix("snapshot-")), p))
            except ValueError:
                continue
    return sorted(found)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(directory: Path, snap: Snapshot) -> Path:
    """Write ``snap`` atomically and durably; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    final = _path(directory, snap.seq)
    tmp = final.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(snap.encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(directory)
    return final


def load_latest(directory: Path) -> tuple[Snapshot | None, list[str]]:
    """Newest valid snapshot (or None) and a list of problems with newer, invalid ones."""
    problems: list[str] = []
    for _seq, path in reversed(list_snapshots(directory)):
        try:
            return Snapshot.decode(path.read_bytes()), problems
        except (OSError, SnapshotError) as e:
            problems.append(f"{path.name}: {e}")
            log.warning("skipping unreadable snapshot %s: %s", path, e)
    return None, problems


def prune(directory: Path, keep: int, keep_at_or_below: int | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots (and stray temp files); returns what went.
    With ``keep_at_or_below`` the newest snapshot with seq <= it stays too (a sink that lags
    rebuilds its books from it)."""
    removed: list[Path] = []
    snaps = list_snapshots(directory)
    floor_snap = None
    if keep_at_or_below is not None:
        below = [path for seq, path in snaps if seq <= keep_at_or_below]
        floor_snap = below[-1] if below else None
    for _seq, path in snaps[: max(0, len(snaps) - keep)]:
        if path == floor_snap:
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    for tmp in directory.glob("snapshot-*.tmp") if directory.is_dir() else []:
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
