"""Replies of the NATS entry's request/reply: a request waiting for its reports, and its reply
payload -- Cap'n Proto ServerMessage frames (the TCP encoding, numbered 1..n) made by a Rust
`Publisher` with one session, or with `Cift-Format: json` a JSON list of report dicts
(engine/nats_codec.py). Also counts the rejects answered, by code, for the metrics.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from engine.book import EVENT_SIZE
from engine.nats_codec import report_dicts
from engine.nats_publish import SymbolSpec
from engine.wire import Publisher

__all__ = ["ReplyEncoder", "Request"]

_U32 = struct.Struct("<I")


class Request:
    """A request/reply request waiting for its reports."""

    __slots__ = ("account", "chunks", "json", "rejects", "reply", "waiting")

    def __init__(self, reply: str, account: int, json: bool) -> None:
        self.reply = reply
        self.account = account
        self.json = json
        self.rejects: list[tuple[bytes, bytes | None]] = []  # (records, u32 symbols or None)
        self.chunks: list[tuple[int, bytes]] = []  # (symbol index, event records)
        self.waiting = 1  # commands not answered yet, +1 until the request is handed on


class ReplyEncoder:
    """The reply payload of a finished `Request`."""

    def __init__(self, symbols: Sequence[SymbolSpec]) -> None:
        self.names = [s[0] for s in symbols]
        self.publisher = Publisher(list(symbols))
        # Rejects of JSON replies and of refused JetStream messages (`count_codes`), by code;
        # Cap'n Proto replies are counted by the publisher.
        self._codes: dict[int, int] = {}

    def payload(self, req: Request) -> bytes:
        if not req.json:
            return self._frames(req)
        reports: list[dict[str, Any]] = []
        for records, syms in req.rejects:
            reports += report_dicts(records, req.account, self._namer(syms), len(reports) + 1)
        for index, records in req.chunks:
            namer = self._namer(_U32.pack(index) * (len(records) // EVENT_SIZE))
            reports += report_dicts(records, req.account, namer, len(reports) + 1)
        self.count_codes([r["code"] for r in reports if r["kind"] == "reject"])
        return orjson.dumps(reports)

    def count_codes(self, codes: list[int]) -> None:
        counts = self._codes
        for code in codes:
            counts[code] = counts.get(code, 0) + 1

    def reject_counts(self) -> dict[int, int]:
        """Rejects counted by `count_codes` and those in Cap'n Proto replies, by code."""
        counts = dict(self._codes)
        frames = self.publisher.stats()["rejects"]
        for code, n in (frames if isinstance(frames, dict) else {}).items():
            counts[code] = counts.get(code, 0) + n
        return counts

    def _name(self, index: int) -> str:
        return self.names[index] if 0 <= index < len(self.names) else ""

    def _namer(self, syms: bytes | None) -> Callable[[int], str]:
        if syms is None:
            return lambda _i: ""
        return lambda i: self._name(int.from_bytes(syms[i * 4 : i * 4 + 4], "little"))

    def _frames(self, req: Request) -> bytes:
        p = self.publisher
        p.close_session(1)
        p.open_session(1)
        if req.account:
            p.bind(1, req.account)
        for records, syms in req.rejects:
            if syms is None:
                p.add_for_session(1, records)
            else:
                p.add_events_each(records, syms)
        for index, records in req.chunks:
            p.add_events(records, index)
        out = p.drain()
        return out[0][1] if out else b""
