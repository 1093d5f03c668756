"""The order-entry protocol in Python (pycapnp): request frames, reply decoding, framing.

One schema, `engine/schema/cift.capnp`, serves both this module (client library, CLI, tests)
and the engine's Rust codec. A frame is a little-endian u32 body length and one Cap'n Proto
message (standard serialization). docs/protocol.md walks through the schema and session rules.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import capnp  # type: ignore[import-untyped]

__all__ = [
    "FRAME_HEADER",
    "PROTOCOL_VERSION",
    "SCHEMA_FILE",
    "FrameError",
    "Report",
    "SymbolInfo",
    "cancel",
    "decode_report",
    "heartbeat",
    "logon",
    "logout",
    "mass_cancel",
    "new_order",
    "replace",
    "split_frames",
]

SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "cift.capnp"
schema: Any = capnp.load(str(SCHEMA_FILE))
PROTOCOL_VERSION: int = int(schema.protocolVersion)
FRAME_HEADER = struct.Struct("<I")

# Names accepted for the enum fields (the schema's enumerant names, plus CLI-friendly spellings).
_ALIASES = {
    "stop-market": "stopMarket",
    "stop_market": "stopMarket",
    "stop-limit": "stopLimit",
    "stop_limit": "stopLimit",
    "cancel-incoming": "cancelIncoming",
    "cancel-resting": "cancelResting",
    "cancel-both": "cancelBoth",
    "decrement-cancel": "decrementCancel",
}


def _enum(value: str) -> str:
    v = value.strip()
    return _ALIASES.get(v.lower(), v if v[:1].islower() else v.lower())


class FrameError(ValueError):
    """The byte stream is not a sequence of frames (bad length prefix)."""


def _frame(message: Any) -> bytes:
    body: bytes = message.to_bytes()
    return FRAME_HEADER.pack(len(body)) + body


def _client(kind: str) -> tuple[Any, Any]:
    msg = schema.ClientMessage.new_message()
    return msg, msg.init(kind)


def logon(account: int, token: str) -> bytes:
    msg, body = _client("logon")
    body.account = account
    body.token = token
    body.protocolVersion = PROTOCOL_VERSION
    return _frame(msg)


def heartbeat(id: int = 0) -> bytes:
    msg, body = _client("heartbeat")
    body.id = id
    return _frame(msg)


def logout(code: int = 1013, text: str = "") -> bytes:
    msg, body = _client("logout")
    body.code = code
    body.text = text
    return _frame(msg)


def new_order(
    symbol: str,
    side: str,
    qty: int,
    price: int = 0,
    *,
    ord_type: str = "limit",
    tif: str = "gtc",
    client_order_id: int = 0,
    stop_price: int = 0,
    display_qty: int = 0,
    expire_ts: int = 0,
    stp: str = "none",
    stp_group: int = 0,
    post_only: bool = False,
) -> bytes:
    """A NewOrder frame. Enum names as in the schema ("buy", "stopLimit", "ioc", ...)."""
    msg, o = _client("newOrder")
    o.symbol = symbol
    o.clientOrderId = client_order_id
    o.side = _enum(side)
    o.ordType = _enum(ord_type)
    o.tif = _enum(tif)
    o.price = price
    o.stopPrice = stop_price
    o.qty = qty
    o.displayQty = display_qty
    o.expireTs = expire_ts
    o.stp = _enum(stp)
    o.stpGroup = stp_group
    o.postOnly = post_only
    return _frame(msg)


def cancel(symbol: str, order_id: int = 0, client_order_id: int = 0) -> bytes:
    msg, c = _client("cancel")
    c.symbol = symbol
    c.orderId = order_id
    c.clientOrderId = client_order_id
    return _frame(msg)


def replace(
    symbol: str, qty: int, price: int = 0, *, order_id: int = 0, client_order_id: int = 0
) -> bytes:
    msg, r = _client("replace")
    r.symbol = symbol
    r.orderId = order_id
    r.clientOrderId = client_order_id
    r.price = price
    r.qty = qty
    return _frame(msg)


def mass_cancel(symbol: str = "", side: str = "none") -> bytes:
    """Cancel the account's orders on `symbol` ("" = every symbol), `side` "none" = both."""
    msg, m = _client("massCancel")
    m.symbol = symbol
    m.side = _enum(side)
    return _frame(msg)


ADMIN_ACTIONS = (
    "killSwitchOn",
    "killSwitchOff",
    "disableAccount",
    "enableAccount",
    "massCancel",
    "haltSymbol",
    "openSymbol",
    "closeSymbol",
    "setLimit",
    "resetLimits",
)
"""The schema's AdminAction names (docs/risk.md, "Controls")."""
LIMIT_KEYS = (
    "maxOpenOrders",
    "maxOpenBuyNotional",
    "maxOpenSellNotional",
    "creditLimit",
    "maxPosition",
    "ratePerSec",
    "rateBurst",
)
"""The schema's LimitKey names."""


def admin(
    action: str,
    *,
    request_id: int = 0,
    account: int = 0,
    symbol: str = "",
    side: str = "none",
    limit: str = "none",
    value: int = 0,
) -> bytes:
    """A trading control (admin sessions only): `action` one of ADMIN_ACTIONS, `limit` one of
    LIMIT_KEYS for setLimit (`value` -1 = no limit)."""
    msg, m = _client("admin")
    m.requestId = request_id
    m.action = action
    m.account = account
    m.symbol = symbol
    m.side = _enum(side)
    m.limit = limit
    m.value = value
    return _frame(msg)


@dataclass(frozen=True)
class SymbolInfo:
    name: str
    tick_size: int
    lot_size: int
    price_precision: int
    min_price: int
    max_price: int
    max_order_qty: int


@dataclass(frozen=True)
class Report:
    """One message from the engine, flattened: `kind` is the schema's union member name
    (logonAck, heartbeat, ack, reject, fill, cancelled, replaced, triggered, logout,
    adminReply); fields a kind does not carry keep their zero value. An adminReply has
    `request_id`, `action`, `account` (the account acted on), `symbol`, `code` (0 = done),
    `text` and `cmd_seq`."""

    kind: str
    seq: int
    symbol: str = ""
    order_id: int = 0
    client_order_id: int = 0
    side: str = ""
    price: int = 0
    qty: int = 0
    leaves: int = 0
    cmd_seq: int = 0
    code: int = 0
    text: str = ""
    reason: str = ""
    stop_price: int = 0
    is_stop: bool = False
    trade_id: int = 0
    aggressor: bool = False
    old_price: int = 0
    old_qty: int = 0
    priority_kept: bool = False
    last_price: int = 0
    heartbeat_id: int = 0
    account: int = 0
    session_id: int = 0
    idle_timeout_ms: int = 0
    symbols: tuple[SymbolInfo, ...] = field(default=())
    request_id: int = 0
    action: str = ""


_COMMON = {
    "symbol": "symbol",
    "orderId": "order_id",
    "clientOrderId": "client_order_id",
    "price": "price",
    "qty": "qty",
    "cmdSeq": "cmd_seq",
}
_EXTRA = {
    "ack": {"leaves": "leaves", "stopPrice": "stop_price", "isStop": "is_stop"},
    "reject": {"code": "code", "text": "text"},
    "fill": {"leaves": "leaves", "tradeId": "trade_id", "aggressor": "aggressor"},
    "cancelled": {"leaves": "leaves"},
    "replaced": {
        "leaves": "leaves",
        "oldPrice": "old_price",
        "oldQty": "old_qty",
        "priorityKept": "priority_kept",
    },
    "triggered": {"stopPrice": "stop_price", "lastPrice": "last_price"},
}


def _report(m: Any) -> Report:
    kind = str(m.which())
    body = getattr(m, kind)
    f: dict[str, Any] = {"kind": kind, "seq": int(m.seq)}
    if kind == "logonAck":
        f.update(
            account=body.account,
            session_id=body.sessionId,
            idle_timeout_ms=body.idleTimeoutMs,
            symbols=tuple(
                SymbolInfo(
                    s.name,
                    s.tickSize,
                    s.lotSize,
                    s.pricePrecision,
                    s.minPrice,
                    s.maxPrice,
                    s.maxOrderQty,
                )
                for s in body.symbols
            ),
        )
    elif kind == "heartbeat":
        f["heartbeat_id"] = body.id
    elif kind == "logout":
        f.update(code=body.code, text=body.text)
    elif kind == "adminReply":
        f.update(
            request_id=body.requestId,
            action=str(body.action),
            account=body.account,
            symbol=body.symbol,
            code=body.code,
            text=body.text,
            cmd_seq=body.cmdSeq,
        )
    else:
        for name, attr in (_COMMON | _EXTRA.get(kind, {})).items():
            f[attr] = getattr(body, name)
        f["side"] = str(body.side)
        if kind == "cancelled":
            f["reason"] = str(body.reason)
    return Report(**f)


def decode_report(body: bytes) -> Report:
    """One ServerMessage (a frame body) as a Report."""
    with schema.ServerMessage.from_bytes(body) as m:
        return _report(m)


def split_frames(buf: bytearray, max_frame: int = 16 << 20) -> list[bytes]:
    """Remove every complete frame from the front of `buf`; return their bodies."""
    out: list[bytes] = []
    pos = 0
    while len(buf) - pos >= FRAME_HEADER.size:
        (n,) = FRAME_HEADER.unpack_from(buf, pos)
        if n > max_frame or n < 8 or n % 8:
            raise FrameError(f"bad frame length {n}")
        if len(buf) - pos - FRAME_HEADER.size < n:
            break
        start = pos + FRAME_HEADER.size
        out.append(bytes(buf[start : start + n]))
        pos = start + n
    del buf[:pos]
    return out
