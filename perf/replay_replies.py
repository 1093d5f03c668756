"""The replies file of `python -m perf.replay --record-replies PATH`: every reply received.

    offset 0   magic b"CIFTRPLY" (8 bytes)
    offset 8   u16 version (1), u16 reserved (0), u32 header length H
    offset 16  header: H bytes of UTF-8 JSON (flow file, target, sessions with their accounts)
    then chunks until the end of the file:
               u64 receive time, ns after the start of the replay
               u32 session index, u32 length L
               L bytes: one or more complete ServerMessage wire frames, exactly as received

The frames are kept as the engine sent them (acks, rejects, fills, cancels... with their order
ids, client order ids and cmdSeq), so an audit or a crash test can decode them afterwards with
the schema: `read_replies(path)` yields `engine.protocol.Report`s.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import orjson

from engine.protocol import Report, decode_report, split_frames

__all__ = ["REPLIES_MAGIC", "RepliesWriter", "read_replies", "read_replies_header"]

REPLIES_MAGIC = b"CIFTRPLY"
_VERSION = 1
_PREAMBLE = struct.Struct("<8sHHI")
_CHUNK = struct.Struct("<QII")


class RepliesWriter:
    def __init__(self, path: str | Path, header: Mapping[str, Any]) -> None:
        self._f: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed by close())
        body = orjson.dumps({"format": "cift-replies", "version": _VERSION, **header})
        self._f.write(_PREAMBLE.pack(REPLIES_MAGIC, _VERSION, 0, len(body)) + body)
        self.chunks = 0

    def write(self, t_ns: int, session: int, frames: bytes) -> None:
        self._f.write(_CHUNK.pack(t_ns, session, len(frames)))
        self._f.write(frames)
        self.chunks += 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> RepliesWriter:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _open(path: str | Path) -> tuple[bytes, dict[str, Any], int]:
    data = Path(path).read_bytes()
    if len(data) < _PREAMBLE.size:
        raise ValueError(f"{path}: too short to be a replies file")
    magic, version, _, length = _PREAMBLE.unpack_from(data)
    if magic != REPLIES_MAGIC or version != _VERSION:
        raise ValueError(f"{path}: not a replies file of version {_VERSION}")
    header: dict[str, Any] = orjson.loads(data[_PREAMBLE.size : _PREAMBLE.size + length])
    return data, header, _PREAMBLE.size + length


def read_replies_header(path: str | Path) -> dict[str, Any]:
    return _open(path)[1]


def read_replies(path: str | Path) -> Iterator[tuple[int, int, Report]]:
    """(receive ns, session index, report) for every reply in the file, in arrival order."""
    data, _, pos = _open(path)
    while pos + _CHUNK.size <= len(data):
        t, session, n = _CHUNK.unpack_from(data, pos)
        pos += _CHUNK.size
        buf = bytearray(data[pos : pos + n])
        pos += n
        for body in split_frames(buf):
            yield t, session, decode_report(body)
