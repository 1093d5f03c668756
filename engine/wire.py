"""Typed access to the native wire codec (`engine._native`, native/src/python/wire.rs).

Stubs live in `engine/_native_wire.pyi`; this module gives them to the type checker and the
real classes to the interpreter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine._native_wire import (
        ADMIN_SYMBOL,
        ALL_SYMBOLS,
        JOURNAL_ENTRY_SIZE,
        NO_SYMBOL,
        REPORT_SIZE,
        Publisher,
        Sequencer,
        WireDecoder,
        code_text,
        decode_replies,
        encode_heartbeat,
        encode_logon,
        encode_requests,
        wire_codes,
    )
else:
    from engine._native import (
        ADMIN_SYMBOL,
        ALL_SYMBOLS,
        JOURNAL_ENTRY_SIZE,
        NO_SYMBOL,
        REPORT_SIZE,
        Publisher,
        Sequencer,
        WireDecoder,
        code_text,
        decode_replies,
        encode_heartbeat,
        encode_logon,
        encode_requests,
        wire_codes,
    )

__all__ = [
    "ADMIN_SYMBOL",
    "ALL_SYMBOLS",
    "JOURNAL_ENTRY_SIZE",
    "NO_SYMBOL",
    "REPORT_SIZE",
    "Publisher",
    "Sequencer",
    "WireDecoder",
    "code_text",
    "decode_replies",
    "encode_heartbeat",
    "encode_logon",
    "encode_requests",
    "wire_codes",
]
