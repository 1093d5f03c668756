"""Recovery: newest valid snapshot + replay of the journal after it = the state before the crash.

Used by the daemon at every start (before any port opens) and by `cift-engine journal replay`.
Replay is deterministic: the books are a pure function of the sequenced commands, so applying the
journaled records in order rebuilds exactly the state a process that never crashed would have.
Per-entry work stays out of Python: journal payloads are split by symbol with numpy and applied to
each book in one `Book.apply` call per record.

With the risk engine (docs/risk.md) the snapshot's "risk" section is restored too, and replay
drives it as the daemon does: each journal record's commands through `RiskEngine.check_batch`
(they all passed when they were sequenced — refused commands are never journaled — so the
verdicts only re-make the reservations; one that refuses now is counted, and the book's events
still track the order), then every book's events through `RiskEngine.on_events`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson

from engine._native import Book, JournalCorrupt, JournalReader, journal_recover, journal_scan
from engine.snapshot import Snapshot, load_latest
from engine.wire import ALL_SYMBOLS

if TYPE_CHECKING:
    from engine._native_risk import RiskEngine

__all__ = [
    "ENTRY_DTYPE",
    "JOURNAL_DIR",
    "KIND_COMMANDS",
    "SNAPSHOT_DIR",
    "Recovered",
    "RecoveryError",
    "book_section",
    "journal_entries",
    "journal_files",
    "meta_section",
    "prune_journal",
    "recover",
    "snapshot_of",
    "split_by_symbol",
    "split_entries",
    "state_digest",
]

log = logging.getLogger(__name__)

JOURNAL_DIR = "journal"
SNAPSHOT_DIR = "snapshots"
KIND_COMMANDS = 1
META_SECTION = "meta"
RISK_SECTION = "risk"  # RiskEngine.snapshot() (actors/risk.py writes it)

# One journal entry: the 96-byte sequenced command record, its u32 symbol index, 4 zero bytes.
ENTRY_DTYPE = np.dtype([("cmd", "V96"), ("symbol", "<u4"), ("pad", "<u4")])
_SEQ_OFFSET = 8  # of the seq field inside the command record
_TS_OFFSET = 16  # of the ts field (engine time) inside the command record


class RecoveryError(Exception):
    """The data directory cannot be recovered safely; the message says why and what to do."""


@dataclass(frozen=True)
class Recovered:
    """What a start found and did."""

    snapshot_seq: int  # 0 = no snapshot
    replayed: int  # commands re-applied from the journal
    next_seq: int  # the sequencer continues here
    torn_bytes: int  # bytes cut from a torn journal tail (0 = clean)
    seconds: float
    problems: tuple[str, ...]  # unreadable newer snapshots that were skipped
    risk: RiskEngine | None = None  # restored and replayed (when recover got `risk`)
    risk_refused: int = 0  # replayed commands the risk engine refused this time (expected: 0)
    sections: dict[str, bytes] | None = None  # of the snapshot restored (None: no snapshot)
    last_ts: int = 0  # newest engine time journaled or snapshotted: engine time continues here


def book_section(symbol: str) -> str:
    return f"book:{symbol}"


def journal_entries(payload: bytes, after_seq: int = 0) -> np.ndarray:
    """A journal payload's entries (ENTRY_DTYPE), only those with seq > after_seq."""
    entries = np.frombuffer(payload, dtype=ENTRY_DTYPE)
    if after_seq:
        seqs = np.frombuffer(payload, dtype="<u8")[_SEQ_OFFSET // 8 :: ENTRY_DTYPE.itemsize // 8]
        entries = entries[seqs > after_seq]
    return entries


def split_by_symbol(
    payload: bytes, nsymbols: int, after_seq: int = 0
) -> Iterator[tuple[int, bytes]]:
    """(symbol index, command records) for each symbol present in a journal payload, keeping
    only commands with seq > after_seq, in journal order. An entry for ALL_SYMBOLS (AdvanceTime,
    a mass cancel of every symbol) goes to every symbol, as the sequencer routed it."""
    return split_entries(journal_entries(payload, after_seq), nsymbols)


def split_entries(entries: np.ndarray, nsymbols: int) -> Iterator[tuple[int, bytes]]:
    """(symbol index, command records) of journal entries (ENTRY_DTYPE), as `split_by_symbol`."""
    if len(entries) == 0:
        return
    symbols = entries["symbol"]
    first = int(symbols[0])
    if bool((symbols == first).all()):
        if first < nsymbols:
            yield first, entries["cmd"].tobytes()
        elif first == ALL_SYMBOLS:
            records = entries["cmd"].tobytes()
            for s in range(nsymbols):
                yield s, records
        return
    everyone = symbols == ALL_SYMBOLS
    targets = range(nsymbols) if bool(everyone.any()) else np.unique(symbols)
    for s in targets:
        if s < nsymbols:
            mask = (symbols == s) | everyone
            if bool(mask.any()):
                yield int(s), entries["cmd"][mask].tobytes()


def state_digest(books: Sequence[Book]) -> str:
    """One hex digest of every book's state (order of the config's symbols)."""
    h = 0xCBF29CE484222325
    for b in books:
        h ^= b.digest()
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def meta_section(symbols: Sequence[str], seq: int, ts: int = 0) -> bytes:
    """The snapshot's "meta" section: the symbols (in index order), the covered seq and the
    engine time reached (at least the stamp of command `seq`; 0 = not recorded)."""
    return orjson.dumps({"symbols": list(symbols), "seq": seq, "ts": ts})


def last_stamp(entries: np.ndarray) -> int:
    """The engine time of the newest of journal `entries` (stamps never go back in a run)."""
    if len(entries) == 0:
        return 0
    cmd = entries["cmd"][-1].tobytes()
    return int.from_bytes(cmd[_TS_OFFSET : _TS_OFFSET + 8], "little")


def journal_files(jdir: Path) -> list[tuple[int, Path]]:
    """Journal files `{first_seq:020}.cjl`, oldest first."""
    found: list[tuple[int, Path]] = []
    if jdir.is_dir():
        for p in jdir.glob("*.cjl"):
            if p.stem.isdigit():
                found.append((int(p.stem), p))
    return sorted(found)


def prune_journal(jdir: Path, covered_seq: int) -> list[Path]:
    """Delete the journal files whose every command has seq <= `covered_seq` (a kept snapshot
    holds them); never the newest file (the writer appends to it). Returns what went."""
    files = journal_files(jdir)
    removed: list[Path] = []
    for (_first, path), (next_first, _next) in itertools.pairwise(files):
        if next_first - 1 > covered_seq:
            break
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def snapshot_of(symbols: Sequence[str], books: Sequence[Book], seq: int, ts: int = 0) -> Snapshot:
    """A snapshot of `books` that have applied exactly the commands with seq <= `seq`, engine
    time `ts` reached."""
    sections = {book_section(s): b.snapshot() for s, b in zip(symbols, books, strict=True)}
    sections[META_SECTION] = meta_section(symbols, seq, ts)
    return Snapshot(seq=seq, sections=sections)


def recover(
    data_dir: Path,
    symbols: Sequence[str],
    books: list[Book],
    progress: Callable[[int], None] | None = None,
    *,
    repair: bool = True,
    use_snapshot: bool = True,
    events: Callable[[int, bytes], None] | None = None,
    risk: Callable[[bytes | None], RiskEngine] | None = None,
) -> Recovered:
    """Restore `books` (one per symbol, freshly built from config) in place of the entries of
    `books`, then replay the journal; raises RecoveryError when it cannot be done safely.
    `progress(commands replayed so far)` is called after every journal record. `repair=False`
    (offline tools) leaves a torn tail in place, `use_snapshot=False` replays the journal from
    its start (it must still begin at seq 1). `events(symbol index, event records)` receives
    what each `Book.apply` produced (the daemon discards them: their replies went out, or the
    commands were never acknowledged). `risk(snapshot section or None)` makes the risk engine
    (restored from the section, configured), which replay then drives like the daemon does; it
    is returned in `Recovered.risk`."""
    start = time.perf_counter()
    snap, problems = load_latest(data_dir / SNAPSHOT_DIR) if use_snapshot else (None, [])
    after = 0
    engine: RiskEngine | None = None
    last_ts = 0
    if snap is not None:
        meta = orjson.loads(snap.sections.get(META_SECTION, b"{}"))
        ts = meta.get("ts", 0)
        last_ts = ts if isinstance(ts, int) and ts > 0 else 0
        had = meta.get("symbols")
        if not isinstance(had, list) or had != list(symbols)[: len(had)]:
            raise RecoveryError(
                f"snapshot {snap.seq} was taken with symbols {had}, the config has "
                f"{list(symbols)}: symbols may be appended to a data directory's config, never "
                "removed or reordered"
            )
        for i, s in enumerate(symbols[: len(had)]):
            try:
                books[i] = Book.restore(snap.sections[book_section(s)])
            except (KeyError, ValueError) as e:
                raise RecoveryError(f"snapshot {snap.seq}: book {s}: {e}") from e
        if risk is not None:
            try:
                engine = risk(snap.sections.get(RISK_SECTION))
            except ValueError as e:
                raise RecoveryError(f"snapshot {snap.seq}: risk: {e}") from e
        after = snap.seq
    if risk is not None and engine is None:
        engine = risk(None)
    jdir = data_dir / JOURNAL_DIR
    try:
        scan = journal_recover(jdir) if repair else journal_scan(jdir)
    except (JournalCorrupt, OSError) as e:
        raise RecoveryError(
            f"{e}. The journal is damaged before its last record: run `cift-engine journal "
            f"verify {data_dir}` and see docs/durability.md (corruption runbook)"
        ) from e
    torn = scan["torn"]
    if torn is not None:
        log.warning(
            "journal: torn tail of %d bytes at %s:%d truncated (never acknowledged)",
            torn["bytes"],
            torn["path"],
            torn["offset"],
        )
    first = scan["first_seq"]
    if first is not None and first > after + 1:
        raise RecoveryError(
            f"journal starts at seq {first} but the newest valid snapshot covers only {after}: "
            "commands in between are missing"
        )
    replayed = refused = 0
    try:
        for kind, _first_seq, _count, payload in JournalReader(jdir, after + 1):
            if kind != KIND_COMMANDS:
                continue
            entries = journal_entries(payload, after)
            if len(entries) == 0:
                continue
            last_ts = max(last_ts, last_stamp(entries))
            targets = entries["symbol"]
            replayed += int(np.count_nonzero((targets < len(books)) | (targets == ALL_SYMBOLS)))
            if engine is not None:
                verdicts = engine.check_batch(targets.tobytes(), entries["cmd"].tobytes())
                # (a mass cancel of every symbol is not checked live: its 2001 here is no refusal)
                refusals = (np.frombuffer(verdicts, dtype="<u2") != 0) & (targets != ALL_SYMBOLS)
                refused += int(np.count_nonzero(refusals))
            for sym, records in split_entries(entries, len(books)):
                out = books[sym].apply(records)
                if engine is not None and out:
                    engine.on_events(sym, out)
                if events is not None:
                    events(sym, out)
            if progress is not None:
                progress(replayed)
    except JournalCorrupt as e:
        raise RecoveryError(
            f"{e}. Run `cift-engine journal verify {data_dir}` and see docs/durability.md "
            "(corruption runbook)"
        ) from e
    next_seq = max(scan["next_seq"], after + 1)
    return Recovered(
        snapshot_seq=after,
        replayed=replayed,
        next_seq=next_seq,
        torn_bytes=torn["bytes"] if torn is not None else 0,
        seconds=time.perf_counter() - start,
        problems=tuple(problems),
        risk=engine,
        risk_refused=refused,
        sections=dict(snap.sections) if snap is not None else None,
        last_ts=last_ts,
    )


def verify(data_dir: Path) -> dict[str, object]:
    """Journal scan without changing anything (for `journal verify` / `status`)."""
    return dict(journal_scan(data_dir / JOURNAL_DIR))
