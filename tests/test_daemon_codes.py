"""The wire contract from both sides: pycapnp (client library) and the Rust codec (engine)
agree on the schema, and the Python code tables mirror the native ones."""

from __future__ import annotations

import struct

from engine import protocol
from engine.book import (
    COMMAND_SIZE,
    CmdKind,
    Command,
    OrdType,
    Side,
    Stp,
    Tif,
    amend,
    cancel,
    decode_commands,
    encode_command,
    mass_cancel,
    new_order,
)
from engine.codes import GatewayCode, RiskCode, text
from engine.wire import ALL_SYMBOLS, NO_SYMBOL, WireDecoder, encode_requests, wire_codes


def test_python_code_tables_mirror_the_native_ones() -> None:
    native = {code: (stage, txt) for code, stage, txt in wire_codes()}
    for c in GatewayCode:
        assert native[c.value][0] == "gateway"
    for c in RiskCode:
        assert native[c.value][0] == "risk"
    gateway = {c for c, (s, _) in native.items() if s == "gateway"}
    risk = {c for c, (s, _) in native.items() if s == "risk"}
    assert gateway == {c.value for c in GatewayCode}
    assert risk == {c.value for c in RiskCode}
    assert text(1005) == "not logged on" and text(3003).startswith("unknown order")
    assert text(9999) == "unknown code 9999"


def decode(frames: bytes, account: int = 7) -> tuple[list[Command], list[int]]:
    consumed, cmds, syms, rejects, control, error = WireDecoder(["AAPL", "MSFT"], 4096).decode(
        frames, account
    )
    assert (consumed, rejects, control, error) == (len(frames), b"", None, None)
    return decode_commands(cmds), [s for (s,) in struct.iter_unpack("<I", syms)]


def test_pycapnp_requests_decode_in_rust_to_the_book_records() -> None:
    frames = b"".join(
        [
            protocol.new_order(
                "MSFT",
                "sell",
                30,
                100,
                ord_type="stop-limit",
                tif="gtd",
                client_order_id=9,
                stop_price=105,
                display_qty=10,
                expire_ts=77,
                stp="decrement-cancel",
                stp_group=5,
                post_only=True,
            ),
            protocol.cancel("AAPL", order_id=12),
            protocol.replace("AAPL", 4, 99, client_order_id=3),
            protocol.mass_cancel("", "buy"),
            protocol.new_order("ZZZ", "buy", 1, 1),
        ]
    )
    cmds, syms = decode(frames)
    assert cmds == [
        new_order(
            Side.SELL,
            100,
            30,
            ord_type=OrdType.STOP_LIMIT,
            tif=Tif.GTD,
            account=7,
            client_id=9,
            stop_price=105,
            display_qty=10,
            stp=Stp.DECREMENT_CANCEL,
            stp_group=5,
            post_only=True,
            expire_ts=77,
        ),
        cancel(12, account=7),
        amend(0, 4, 99, account=7, client_id=3),
        mass_cancel(7, Side.BUY),
        new_order(Side.BUY, 1, 1, account=7),
    ]
    assert syms == [1, 0, 0, ALL_SYMBOLS, NO_SYMBOL]
    assert cmds[0].kind == CmdKind.NEW


def test_rust_encoded_requests_read_the_same_in_pycapnp() -> None:
    records = encode_command(new_order(Side.BUY, 250, 3, tif=Tif.IOC, client_id=4))
    frames = encode_requests(records, struct.pack("<I", 0), ["AAPL"])
    (body,) = protocol.split_frames(bytearray(frames))
    with protocol.schema.ClientMessage.from_bytes(body) as m:
        o = m.newOrder
        assert (o.symbol, str(o.side), str(o.tif), o.qty, o.price, o.clientOrderId) == (
            "AAPL",
            "buy",
            "ioc",
            3,
            250,
            4,
        )
    assert len(records) == COMMAND_SIZE
