"""Stubs of the wire codec part of `engine._native` (native/src/python/wire.rs).

Batches cross the boundary as bytes of fixed-size records: command records (COMMAND_SIZE),
event records (EVENT_SIZE), journal entries (JOURNAL_ENTRY_SIZE = command record + u32 symbol
index + 4 zero bytes), report records (REPORT_SIZE), and arrays of little-endian u32 symbol
indexes. Imported for typing through `engine.wire`.
"""

from typing import Final, final

from engine._native_risk import RiskEngine

NO_SYMBOL: Final[int]
"""Symbol index of a symbol not in the table (risk rejects it with 2001)."""
ALL_SYMBOLS: Final[int]
"""Symbol index of a mass cancel for every symbol."""
ADMIN_SYMBOL: Final[int]
"""Symbol index of an admin command (a trading control): routed to no book."""
JOURNAL_ENTRY_SIZE: Final[int]
REPORT_SIZE: Final[int]

Control = tuple[str, int, str, int] | tuple[str, int] | tuple[str, int, str]

@final
class WireDecoder:
    """The gateway's frame decoder, shared by every session."""

    def __new__(cls, symbols: list[str], max_frame: int) -> WireDecoder: ...
    def decode(
        self, buf: bytes, account: int, admin: bool = False
    ) -> tuple[int, bytes, bytes, bytes, Control | None, tuple[int, str] | None]:
        """(consumed, command records, u32 symbol indexes, gateway reject event records,
        control message the walk stopped at, framing error (code, text))."""
    @property
    def max_frame(self) -> int: ...
    def set_fast_path(self, on: bool) -> None:
        """Template decoding of standard-layout trading messages on (default) or off."""
    def stats(self) -> dict[str, int | dict[int, int]]: ...

@final
class Sequencer:
    """Risk batch step: basic checks, global seq + batch ts, routing by symbol."""

    def __new__(
        cls,
        rules: list[tuple[int, int, int, int, int, int, int]],
        next_seq: int,
        last_ts: int = 0,
    ) -> Sequencer: ...
    def sequence(
        self, commands: bytes, symbols: bytes, now_ns: int, risk: RiskEngine | None = None
    ) -> tuple[bytes, list[bytes | None], bytes, bytes, int, int]:
        """(journal entries, per-symbol command records or None, risk reject event records,
        their u32 symbol indexes, first seq, last seq). With `risk`, commands that pass the
        basic checks are also checked by the risk engine (stamped with the seq and ts they
        would get); refused ones are rejects with its code and take no seq."""
    @property
    def next_seq(self) -> int: ...
    @property
    def last_ts(self) -> int:
        """The newest engine time stamped (0 before the first batch unless resumed)."""
    def stats(self) -> dict[str, int | dict[int, int]]: ...

@final
class Publisher:
    """Event records -> per-session reply frames (routing, output sequence numbers)."""

    def __new__(cls, symbols: list[tuple[str, int, int, int, int, int, int]]) -> Publisher: ...
    def open_session(self, sid: int) -> None: ...
    def bind(self, sid: int, account: int) -> bool: ...
    def session_of(self, account: int) -> int | None: ...
    def close_session(self, sid: int) -> None: ...
    @property
    def session_count(self) -> int: ...
    def add_events(self, events: bytes, symbol: int) -> None: ...
    def add_events_each(self, events: bytes, symbols: bytes) -> None: ...
    def add_for_session(self, sid: int, events: bytes) -> None: ...
    def add_reject(self, sid: int, code: int) -> None: ...
    def add_logon_ack(self, sid: int, account: int, idle_timeout_ms: int) -> None: ...
    def add_heartbeat(self, sid: int, id: int) -> None: ...
    def add_logout(self, sid: int, code: int, text: str) -> None: ...
    def drain(self) -> list[tuple[int, bytes]]: ...
    def stats(self) -> dict[str, int | dict[int, int]]: ...

def encode_requests(commands: bytes, symbols: bytes, names: list[str]) -> bytes: ...
def encode_logon(account: int, token: str) -> bytes: ...
def encode_heartbeat(id: int) -> bytes: ...
def decode_replies(buf: bytes, max_frame: int) -> tuple[int, bytes]: ...
def wire_codes() -> list[tuple[int, str, str]]: ...
def code_text(code: int) -> str | None: ...
