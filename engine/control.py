"""`cift-engine control ...`: the trading controls, sent as admin messages over the TCP port.

Each control is a sequenced, journaled command executed by the risk engine at its place in the
sequence (docs/risk.md, "Controls"); the command prints the engine's AdminReply once the control
is durable. The session logs on as an admin account (`admin = true` in its [[accounts]] entry;
the embedded defaults have account 100 with token "admin-demo").

    cift-engine control kill ACCOUNT [--off]        kill switch: cancel all, refuse new orders
    cift-engine control disable|enable ACCOUNT      account switch (orders stay)
    cift-engine control mass-cancel ACCOUNT [--symbol S] [--side buy|sell]
    cift-engine control halt|open|close SYMBOL      symbol trading state
    cift-engine control set-limit ACCOUNT KEY VALUE KEY: a [risk] limit key; VALUE "none" = no limit
    cift-engine control reset-limits ACCOUNT        follow the default limits again

Exit status: 0 done, 1 refused by the engine (or no answer), 2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from engine import config as cfg
from engine.protocol import Report

__all__ = ["LIMIT_KEYS", "main"]

# Config key (docs/configuration.md [risk]) -> the schema's LimitKey.
LIMIT_KEYS = {
    "max_open_orders": "maxOpenOrders",
    "max_open_buy_notional": "maxOpenBuyNotional",
    "max_open_sell_notional": "maxOpenSellNotional",
    "credit_limit": "creditLimit",
    "max_position": "maxPosition",
    "rate_per_sec": "ratePerSec",
    "rate_burst": "rateBurst",
}
_STATE = {"halt": "haltSymbol", "open": "openSymbol", "close": "closeSymbol"}


def _parser() -> argparse.ArgumentParser:
    from engine.cli import _session

    ap = argparse.ArgumentParser(
        prog="cift-engine control",
        description="Trading controls (admin session): kill switch, account switch, mass "
        "cancel, symbol state, limits. Each is sequenced and journaled by the engine.",
    )
    sub = ap.add_subparsers(dest="action", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        _session(p)
        # An admin account of the embedded defaults unless told otherwise.
        p.set_defaults(account=100, token="admin-demo")
        p.add_argument("--json", action="store_true", help="the reply as JSON")
        return p

    p = command("kill", "kill switch: cancel every order of ACCOUNT and refuse its new ones")
    p.add_argument("target", type=int, metavar="ACCOUNT")
    p.add_argument("--off", action="store_true", help="turn the kill switch off again")
    for name, what in (("disable", "refuse"), ("enable", "accept again")):
        p = command(name, f"{what} ACCOUNT's new orders and amends (its orders stay)")
        p.add_argument("target", type=int, metavar="ACCOUNT")
    p = command("mass-cancel", "cancel ACCOUNT's orders (a symbol, a side, or all)")
    p.add_argument("target", type=int, metavar="ACCOUNT")
    p.add_argument("--symbol", default="", help="only this symbol (default: every symbol)")
    p.add_argument("--side", default="none", choices=["buy", "sell", "none"])
    for name, what in (
        ("halt", "no new orders or amends in SYMBOL; cancels accepted"),
        ("open", "open SYMBOL for trading again"),
        ("close", "refuse every order command in SYMBOL"),
    ):
        p = command(name, what)
        p.add_argument("symbol")
    p = command("set-limit", "set one of ACCOUNT's limits (it then has limits of its own)")
    p.add_argument("target", type=int, metavar="ACCOUNT")
    p.add_argument("key", choices=sorted(LIMIT_KEYS))
    p.add_argument("value", help='an integer >= 0, or "none" for no limit')
    p = command("reset-limits", "ACCOUNT follows the default limits again")
    p.add_argument("target", type=int, metavar="ACCOUNT")
    return ap


def request(args: argparse.Namespace) -> dict[str, Any]:
    """The `Client.admin` keyword arguments for parsed `args` (ValueError: bad value)."""
    a = args.action
    if a == "kill":
        return {"action": "killSwitchOff" if args.off else "killSwitchOn", "account": args.target}
    if a in ("disable", "enable"):
        return {"action": f"{a}Account", "account": args.target}
    if a == "mass-cancel":
        return {
            "action": "massCancel",
            "account": args.target,
            "symbol": args.symbol,
            "side": args.side,
        }
    if a in _STATE:
        return {"action": _STATE[a], "symbol": args.symbol}
    if a == "set-limit":
        value = -1 if args.value.lower() == "none" else int(args.value)
        if value < -1:
            raise ValueError(f"limit value {args.value}: use an integer >= 0 or 'none'")
        return {
            "action": "setLimit",
            "account": args.target,
            "limit": LIMIT_KEYS[args.key],
            "value": value,
        }
    return {"action": "resetLimits", "account": args.target}


async def _send(args: argparse.Namespace, req: dict[str, Any]) -> Report | str:
    from engine.cli import _gateway_address
    from engine.client import Client, ClosedError, LogonError

    host, port = _gateway_address(args)
    try:
        client = await Client.connect(host, port, args.account, args.token, timeout=args.timeout)
    except LogonError as e:
        return str(e)
    except OSError as e:
        return f"no daemon at {host}:{port} ({e})"
    async with client:
        try:
            reply = await client.admin(**req, timeout=args.timeout)
            await client.logout(args.timeout)
        except (TimeoutError, ClosedError) as e:
            return str(e) or "no answer from the engine"
    return reply


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        req = request(args)
        cfg.load(args.config)
    except (ValueError, cfg.ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    got = asyncio.run(_send(args, req))
    if isinstance(got, str):
        print(f"error: {got}", file=sys.stderr)
        return 1
    out = {
        "action": got.action,
        "account": got.account,
        "symbol": got.symbol,
        "code": got.code,
        "text": got.text,
        "cmd_seq": got.cmd_seq,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    elif got.code == 0:
        target = got.symbol or f"account {got.account}"
        print(f"{got.action} {target}: done (seq {got.cmd_seq})")
    else:
        print(f"{got.action}: refused {got.code}: {got.text}", file=sys.stderr)
    return 0 if got.code == 0 else 1
