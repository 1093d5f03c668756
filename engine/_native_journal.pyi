"""Type stubs for the write-ahead journal part of engine._native (native/src/python/journal.rs)."""

from collections.abc import Iterator
from os import PathLike
from typing import TypedDict, final

class TornTail(TypedDict):
    path: str
    offset: int
    bytes: int

class JournalScan(TypedDict):
    files: int
    records: int
    commands: int
    bytes: int
    first_seq: int | None
    next_seq: int
    torn: TornTail | None

class JournalCorrupt(Exception):
    """The journal cannot be read safely (corruption that is not a torn tail, bad header, gap)."""

@final
class JournalWriter:
    """Appends group-committed records; file I/O and fsync run with the GIL released."""

    def __new__(cls, dir: str | PathLike[str], roll_bytes: int, next_seq: int) -> JournalWriter: ...
    def append(self, kind: int, first_seq: int, count: int, payload: bytes, sync: bool) -> None:
        """Append one record; with ``sync`` it is durable (fdatasync) when this returns."""
    def sync(self) -> bool:
        """fdatasync what was appended since the last sync; False if nothing needed it."""
    @property
    def next_seq(self) -> int: ...
    @property
    def path(self) -> str: ...

@final
class JournalReader:
    """Iterates ``(kind, first_seq, count, payload)`` from the record holding ``from_seq``."""

    def __new__(cls, dir: str | PathLike[str], from_seq: int = 0) -> JournalReader: ...
    def __iter__(self) -> Iterator[tuple[int, int, int, bytes]]: ...
    def __next__(self) -> tuple[int, int, int, bytes]: ...

def journal_scan(dir: str | PathLike[str]) -> JournalScan:
    """Verify a journal directory; raises JournalCorrupt for corruption in the middle."""

def journal_recover(dir: str | PathLike[str]) -> JournalScan:
    """Verify and cut a torn tail; returns the scan from before the cut."""
