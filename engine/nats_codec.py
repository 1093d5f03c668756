"""The NATS entry's JSON variant (header `Cift-Format: json`, docs/nats.md): JSON command
objects -> request frames (the Cap'n Proto the TCP gateway decodes), event records -> JSON
report dicts with the schema's names; and the gateway `Rejected` record the entry makes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import orjson

from engine.codes import GatewayCode
from engine.nats_publish import REASON_NAMES, side_name
from engine.protocol import FRAME_HEADER, schema
from engine.wire import code_text

__all__ = ["json_frames", "reject_record", "report_dicts"]

_EVENT = struct.Struct("<4BH2x4Q3q3Q2q")


def reject_record(code: int, account: int, client_id: int = 0) -> bytes:
    """A gateway `Rejected` event record (seq 0: never sequenced)."""
    return _EVENT.pack(2, 0, 0, 0, code, 0, 0, account, client_id, 0, 0, 0, 0, 0, 0, 0, 0)


def _json_frame(obj: Any) -> bytes:
    """One JSON command object as a request frame (ValueError/KeyError: not a command)."""
    if not isinstance(obj, dict):
        raise ValueError("a command must be a JSON object")
    kind = obj.get("type")
    if kind not in ("newOrder", "cancel", "replace", "massCancel"):
        raise KeyError(kind)
    msg = schema.ClientMessage.new_message()
    body = msg.init(kind)
    for key, value in obj.items():
        if key != "type":
            setattr(body, key, value)
    data: bytes = msg.to_bytes()
    return len(data).to_bytes(FRAME_HEADER.size, "little") + data


def json_frames(payload: bytes, account: int) -> tuple[bytes, bytes]:
    """A JSON payload (an object or a list of objects) -> (request frames, reject records for
    the objects that are not commands: 1003 malformed, 1004 unknown type)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return b"", reject_record(GatewayCode.MALFORMED_MESSAGE, account)
    frames: list[bytes] = []
    rejects: list[bytes] = []
    for obj in doc if isinstance(doc, list) else [doc]:
        try:
            frames.append(_json_frame(obj))
        except KeyError:
            rejects.append(reject_record(GatewayCode.UNKNOWN_MESSAGE, account, _client_id(obj)))
        except Exception:  # pycapnp: unknown field, wrong type, out of range
            rejects.append(reject_record(GatewayCode.MALFORMED_MESSAGE, account, _client_id(obj)))
    return b"".join(frames), b"".join(rejects)


def _client_id(obj: Any) -> int:
    v = obj.get("clientOrderId", 0) if isinstance(obj, dict) else 0
    return v if isinstance(v, int) and 0 <= v < 1 << 64 else 0


def report_dicts(
    events: bytes, account: int, symbol: Callable[[int], str], start: int = 1
) -> list[dict[str, Any]]:
    """The reports `events` make for `account`, as JSON-ready dicts with the schema's names
    (what the Cap'n Proto reply holds), `seq` numbered from `start`. `symbol(i)` names event
    i's symbol."""
    out: list[dict[str, Any]] = []

    def report(
        kind: str, i: int, oid: int, cid: int, side: int, e: tuple[int, ...]
    ) -> dict[str, Any]:
        r = {"kind": kind, "seq": start + len(out), "symbol": symbol(i), "orderId": oid}
        r |= {"clientOrderId": cid, "side": side_name(side), "price": e[9], "qty": e[10]}
        out.append(r)
        return r

    for i, e in enumerate(_EVENT.iter_unpack(events)):
        kind, sd, reason, flags, code, seq, oid, acc, cid, _, _, leaves = e[:12]
        cntr_id, cntr_acc, cntr_cid, aux, aux2 = e[12:]
        if kind == 3:  # a trade: a fill for each side that is ours
            if acc == account:
                r = report("fill", i, oid, cid, sd, e)
                r |= {"leaves": leaves, "tradeId": aux, "aggressor": False, "cmdSeq": seq}
            if cntr_acc == account:
                r = report("fill", i, cntr_id, cntr_cid, 3 - sd, e)
                r |= {"leaves": aux2, "tradeId": aux, "aggressor": True, "cmdSeq": seq}
        elif acc != account:
            continue
        elif kind == 1:
            r = report("ack", i, oid, cid, sd, e)
            r |= {"leaves": leaves, "stopPrice": aux, "isStop": bool(flags & 1), "cmdSeq": seq}
        elif kind == 2:
            r = report("reject", i, oid, cid, sd, e)
            r |= {"code": code, "text": code_text(code) or "", "cmdSeq": seq}
        elif kind == 4:
            r = report("cancelled", i, oid, cid, sd, e)
            r |= {"leaves": leaves, "reason": _reason(reason), "cmdSeq": seq}
        elif kind == 5:
            r = report("replaced", i, oid, cid, sd, e)
            r |= {"leaves": leaves, "oldPrice": aux, "oldQty": aux2}
            r |= {"priorityKept": bool(flags & 1), "cmdSeq": seq}
        elif kind == 6:
            r = report("triggered", i, oid, cid, sd, e)
            r |= {"stopPrice": aux, "lastPrice": aux2, "cmdSeq": seq}
    return out


def _reason(raw: int) -> str:
    return REASON_NAMES[raw] if raw < len(REASON_NAMES) else "none"
