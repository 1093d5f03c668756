"""Reject and disconnect codes of the gateway (1xxx) and risk (2xxx) stages, with their texts.

The book's codes (3xxx) are `engine.book.RejectCode`. Codes travel in `Reject.code` and
`Logout.code` (engine/schema/cift.capnp) and label the `cift_rejects_total` metric. The native
table (`native/src/wire/codes.rs`) is the source; tests pin this mirror to it. `text(code)` knows
every stage's codes.
"""

from __future__ import annotations

from enum import IntEnum

from engine.wire import code_text

__all__ = ["GatewayCode", "RiskCode", "stage", "text"]


class GatewayCode(IntEnum):
    """Per-frame rejects (the session goes on) and disconnect reasons (a Logout, then close)."""

    FRAME_TOO_LARGE = 1001
    BAD_FRAME_LENGTH = 1002
    MALFORMED_MESSAGE = 1003
    UNKNOWN_MESSAGE = 1004
    NOT_LOGGED_ON = 1005
    LOGON_REFUSED = 1006
    ALREADY_LOGGED_ON = 1007
    ACCOUNT_IN_USE = 1008
    SLOW_CONSUMER = 1009
    IDLE_TIMEOUT = 1010
    SHUTTING_DOWN = 1011
    TOO_MANY_SESSIONS = 1012
    LOGOUT = 1013
    UNSUPPORTED_VERSION = 1014
    TRUNCATED_FRAME = 1015
    NOT_ADMIN = 1016


class RiskCode(IntEnum):
    """The risk stage's codes: the sequencer's basic checks and the risk engine's
    (docs/risk.md)."""

    UNKNOWN_SYMBOL = 2001
    SYMBOL_CLOSED = 2002
    SYMBOL_HALTED = 2003
    ACCOUNT_DISABLED = 2004
    KILL_SWITCH = 2005
    TICK_MULTIPLE = 2006
    LOT_MULTIPLE = 2007
    QTY_BELOW_MIN = 2008
    QTY_ABOVE_MAX = 2009
    NO_REFERENCE_PRICE = 2010
    NOTIONAL_ABOVE_MAX = 2011
    PRICE_BAND = 2012
    MARKET_PRICE_BAND = 2013
    RATE_LIMIT = 2014
    MAX_OPEN_ORDERS = 2015
    OPEN_BUY_NOTIONAL = 2016
    OPEN_SELL_NOTIONAL = 2017
    POSITION_LIMIT = 2018
    CREDIT_LIMIT = 2019
    DUPLICATE_CLIENT_ID = 2020
    AMEND_UNACKNOWLEDGED = 2021
    ORDER_ID_IN_USE = 2022
    CONTROLS_NEED_RISK = 2023
    BAD_ADMIN = 2024
    BAD_LIMIT_VALUE = 2025


def text(code: int) -> str:
    """The text of any stage's code ("unknown code N" if there is none)."""
    found = code_text(code)
    return found if found is not None else f"unknown code {code}"


def stage(code: int) -> str:
    """gateway, risk, book or unknown, by code range."""
    return {1: "gateway", 2: "risk", 3: "book"}.get(code // 1000, "unknown")
