"""End to end: the daemon subprocess with NATS (and Redis) enabled, against real servers.
In-process coverage of the same behaviour: tests/test_nats_*.py.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from conftest import REPO, Daemon, base_config, merge, toml_dumps
from services import (  # noqa: F401
    NatsServer,
    RedisServer,
    nats_server,
    redis_server,
    subscribed,
    until,
)

from engine import protocol
from engine.book import PyBook, Side
from engine.client import Client
from engine.nats_entry import HEADER_ACCOUNT, HEADER_TOKEN, msg_id
from engine.nats_publish import connect


def nats_overrides(url: str, redis_url: str | None = None) -> dict[str, Any]:
    over: dict[str, Any] = {
        "services": {"nats": True, "redis": redis_url is not None},
        "nats": {"url": url},
    }
    if redis_url is not None:
        over["redis"] = {"url": redis_url}
    return over


def daemon_accepts_nats(tmp: Path) -> str | None:
    """None if `cift-engine check-config` accepts a config enabling NATS and Redis, else why."""
    cfg = merge(
        base_config(tmp / "probe"),
        nats_overrides("nats://127.0.0.1:4222", "redis://127.0.0.1:6379/0"),
    )
    path = tmp / "probe.toml"
    path.write_text(toml_dumps(cfg))
    run = subprocess.run(
        [sys.executable, "-m", "engine", "check-config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if run.returncode == 0:
        return None
    return (run.stderr or run.stdout).strip().splitlines()[-1]


def test_check_config_accepts_the_nats_and_redis_config(tmp_path: Path) -> None:
    assert daemon_accepts_nats(tmp_path) is None


def headers(account: int) -> dict[str, str]:
    return {HEADER_ACCOUNT: str(account), HEADER_TOKEN: f"t{account}"}


async def request(nc: Any, payload: bytes, account: int) -> list[protocol.Report]:
    msg = await nc.request("orders.AAPL", payload, timeout=10, headers=headers(account))
    return [protocol.decode_report(f) for f in protocol.split_frames(bytearray(msg.data))]


def start(tmp: Path, over: dict[str, Any]) -> Daemon:
    tmp.mkdir(parents=True, exist_ok=True)
    return Daemon(tmp, over).wait_ready()


async def test_daemon_order_life_cycle_over_request_reply(
    nats_server: NatsServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    d = start(tmp_path / "d", nats_overrides(nats_server.url))
    nc = await connect(nats_server.url, "test")
    try:
        [ack] = await request(nc, protocol.new_order("AAPL", "sell", 10, 100, client_order_id=1), 2)
        assert ack.kind == "ack"
        taker = await request(nc, protocol.new_order("AAPL", "buy", 4, 100, client_order_id=1), 1)
        assert [r.kind for r in taker] == ["ack", "fill"]
        [c] = await request(nc, protocol.cancel("AAPL", client_order_id=1), 2)
        assert (c.kind, c.qty) == ("cancelled", 6)
        assert d.json("/book/AAPL")["asks"] == []
    finally:
        await nc.close()
        d.stop()


async def test_daemon_killed_mid_jetstream_stream_loses_and_duplicates_nothing(
    nats_server: NatsServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    over = nats_overrides(nats_server.url)
    nc = await connect(nats_server.url, "test")
    js = nc.jetstream()
    d = start(tmp_path / "d", over)
    book = PyBook()
    try:
        for cid in range(1, 301):
            account = 1 + cid % 2
            side = "buy" if cid % 3 else "sell"
            price = 100 + (cid * 7) % 11 - 5
            frame = protocol.new_order("AAPL", side, 1 + cid % 5, price, client_order_id=cid)
            hdr = headers(account) | {"Nats-Msg-Id": msg_id(account, cid)}
            await js.publish("orders.durable.AAPL", frame, headers=hdr)
            book.new_order(
                Side.BUY if cid % 3 else Side.SELL,
                price,
                1 + cid % 5,
                account=account,
                client_id=cid,
            )
            if cid == 150:
                d.signal(signal.SIGKILL)
                d.wait()
                d.stop()  # closes its log file
                # The killed daemon's runtime file would be read as the new one's readiness.
                (d.data_dir / "daemon.json").unlink(missing_ok=True)
                d = Daemon(tmp_path / "d", over).wait_ready()  # same data dir: recovery
        want = {
            "bids": [list(x) for x in book.native.depth(1, 100)],
            "asks": [list(x) for x in book.native.depth(2, 100)],
        }

        def same() -> bool:
            got = d.json("/book/AAPL?depth=100")
            return bool(got["bids"] == want["bids"] and got["asks"] == want["asks"])

        await until(same, "the daemon's book to hold every order exactly once")
    finally:
        await nc.close()
        d.stop()


async def test_nats_and_redis_outage_matching_goes_on_and_reports_arrive(
    nats_server: NatsServer,  # noqa: F811
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
    _close_clients: None,
) -> None:
    redis_url = f"redis://127.0.0.1:{redis_server.port}/0"
    d = start(tmp_path / "d", nats_overrides(nats_server.url, redis_url))
    try:
        client = await d.client(1)
        taker = await d.client(2)
        for i in range(50):
            await client.send(protocol.new_order("AAPL", "sell", 1, 100 + i, client_order_id=i + 1))
        nats_server.kill()
        redis_server.kill()
        for i in range(50):  # matching goes on over TCP while NATS and Redis are down
            await taker.send(protocol.new_order("AAPL", "buy", 1, 200, client_order_id=i + 1))
        await until(lambda: not d.json("/book/AAPL")["asks"], "every ask filled")
        nats_server.start()
        redis_server.start()
        nc = await connect(nats_server.url, "test")
        r = aioredis.Redis(port=redis_server.port)
        try:

            async def delivered() -> bool:
                info = await nc.jetstream().stream_info("CIFT_EXEC")
                return bool(info.state.messages > 0)

            await until(delivered, "execution reports stored after the outage")
            sub = await nc.jetstream().pull_subscribe("exec.1", stream="CIFT_EXEC")
            seqs: list[int] = []
            while True:
                try:
                    msgs = await sub.fetch(200, timeout=1.0)
                except TimeoutError:
                    break
                for m in msgs:
                    frames = protocol.split_frames(bytearray(m.data))
                    seqs += [protocol.decode_report(f).seq for f in frames]
            # Account 1: 50 acks and 50 fills, numbered without a gap.
            assert seqs == list(range(1, 101))

            async def cached() -> bool:
                raw = await r.get("price:latest:AAPL")
                return raw is not None and int(raw) == 149

            await until(cached, "the last price rewritten in Redis")
            top = await r.hgetall("book:top:AAPL")
            assert int(top[b"ask"]) == 0 and orjson.loads(await r.get("book:depth:AAPL"))
        finally:
            await nc.close()
            await r.aclose()
    finally:
        d.stop()


Key = tuple[int, str, int, int, int, int]  # account, kind, order id, cmd seq, trade id, leaves


def key(account: int, r: protocol.Report) -> Key:
    return (account, r.kind, r.order_id, r.cmd_seq, r.trade_id, r.leaves)


class TcpFlow:
    """Orders over TCP from account 1 (sells, resting) and 2 (buys, taking some of them); every
    report the sessions received, by `key`."""

    def __init__(self) -> None:
        self.cid = 0
        self.got: set[Key] = set()
        self.clients: dict[int, Any] = {}

    async def connect(self, d: Daemon) -> None:
        self.clients = {a: await d.client(a) for a in (1, 2)}

    async def send(self, n: int) -> None:
        for _ in range(n):
            self.cid += 1
            account = 1 + self.cid % 2
            side, price = ("sell", 100 + self.cid % 5) if account == 1 else ("buy", 102)
            frame = protocol.new_order(
                "AAPL", side, 1 + self.cid % 3, price, client_order_id=self.cid
            )
            await self.clients[account].send(frame)

    async def settle(self) -> None:
        """Wait for the reports of everything sent (the last order's ack, then a round trip)."""
        last = {1 + (self.cid - i) % 2: self.cid - i for i in (0, 1)}
        for account, c in self.clients.items():
            for r in await c.wait_until(lambda r, c=last[account]: r.client_order_id == c, 15):
                self.got.add(key(account, r))
        for account, c in self.clients.items():
            self.got.update(key(account, r) for r in await c.sync())

    async def drain_closed(self) -> None:
        """After a crash: whatever the sessions had received."""
        for account, c in self.clients.items():
            async for r in c.reports():
                self.got.add(key(account, r))


async def test_nats_and_engine_killed_mid_flow_every_report_of_an_acked_order_is_stored(
    nats_server: NatsServer,  # noqa: F811
    tmp_path: Path,
    _close_clients: None,
) -> None:
    """NATS is killed mid-flow (and restarted on its port), then killed again and the engine
    with it while reports wait in its outbox: after both come back, the CIFT_EXEC stream holds
    every report a TCP session got (the restarted engine re-publishes from the journal)."""
    over = nats_overrides(nats_server.url)
    d = start(tmp_path / "d", over)
    flow = TcpFlow()
    nc: Any = None
    try:
        await flow.connect(d)
        await flow.send(60)
        await flow.settle()
        nats_server.kill()
        await flow.send(60)  # matching goes on while NATS is down
        await flow.settle()
        nats_server.start()
        await flow.send(60)
        await flow.settle()
        nats_server.kill()
        await flow.send(60)
        await flow.settle()
        d.signal(signal.SIGKILL)  # its outbox holds the reports of the last 60 orders at least
        d.wait()
        d.stop()
        await flow.drain_closed()
        (d.data_dir / "daemon.json").unlink(missing_ok=True)
        nats_server.start()
        d = Daemon(tmp_path / "d", over).wait_ready()
        assert d.metric("cift_nats_exec_republished_total") > 0
        await flow.connect(d)
        await flow.send(60)
        await flow.settle()
        assert {k[1] for k in flow.got} >= {"ack", "fill"}

        nc = await connect(nats_server.url, "test")
        sub = await nc.jetstream().pull_subscribe("exec.*", stream="CIFT_EXEC")
        stored: set[Key] = set()

        async def everything_stored() -> bool:
            with contextlib.suppress(TimeoutError):
                for m in await sub.fetch(1000, timeout=0.5):
                    if m.subject == "exec.all":
                        continue
                    account = int(m.subject.split(".")[1])
                    frames = protocol.split_frames(bytearray(m.data))
                    stored.update(key(account, protocol.decode_report(f)) for f in frames)
            return flow.got <= stored

        try:
            await until(everything_stored, "every report of the TCP sessions in CIFT_EXEC", 60)
        except TimeoutError:
            missing = sorted(flow.got - stored)
            raise AssertionError(f"{len(missing)} reports never stored: {missing[:10]}") from None
    finally:
        if nc is not None:
            await nc.close()
        d.stop()


async def test_metrics_count_nats_entry_publishing_and_redis_including_outages(
    nats_server: NatsServer,  # noqa: F811
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
    _close_clients: None,
) -> None:
    redis_url = f"redis://127.0.0.1:{redis_server.port}/0"
    d = start(tmp_path / "d", nats_overrides(nats_server.url, redis_url))
    nc = await connect(nats_server.url, "test")
    try:
        await request(nc, protocol.new_order("AAPL", "sell", 5, 100, client_order_id=1), 1)
        [bad] = await request(nc, protocol.heartbeat(7), 1)  # no sessions on NATS: 1004
        assert bad.code == 1004
        msg = await nc.request(
            "orders.AAPL", b"{not json", timeout=10, headers=headers(1) | {"Cift-Format": "json"}
        )
        assert orjson.loads(msg.data)[0]["code"] == 1003
        js = nc.jetstream()
        order = protocol.new_order("AAPL", "buy", 2, 100, client_order_id=2)
        await js.publish("orders.durable.AAPL", order, headers=headers(2) | {"Nats-Msg-Id": "2-2"})
        await js.publish(  # a payload ending inside its frame: poison, 1003
            "orders.durable.AAPL", order[:10], headers=headers(2) | {"Nats-Msg-Id": "2-x"}
        )

        def m(name: str, **labels: str) -> float:
            return d.metric(name, **labels)

        await until(lambda: m("cift_nats_jetstream_acks_total") >= 1, "the JetStream order acked")
        await until(lambda: m("cift_nats_poison_total") >= 1, "the poison message counted")
        assert m("cift_nats_requests_total") == 3
        assert m("cift_nats_replies_total") == 3
        assert m("cift_nats_jetstream_messages_total") == 2
        assert m("cift_nats_rejects_total", code="1004", stage="gateway") == 1
        assert m("cift_nats_rejects_total", code="1003", stage="gateway") == 2  # JSON + poison
        await until(lambda: m("cift_nats_published_total", kind="exec") >= 2, "exec reports")
        await until(lambda: m("cift_nats_published_total", kind="md") >= 1, "market data")
        await until(lambda: m("cift_redis_writes_total") >= 1, "a Redis write")
        assert m("cift_nats_connected") == 1 and m("cift_redis_up") == 1

        nats_server.kill()
        redis_server.kill()
        client = await d.client(3)
        await client.new_order("AAPL", "sell", 1, 101)  # over TCP while both are down
        await until(lambda: m("cift_redis_failures_total") >= 1, "Redis failures counted")
        await until(lambda: m("cift_nats_exec_pending") >= 1, "reports waiting for NATS")
        nats_server.start()
        redis_server.start()
        await until(lambda: m("cift_nats_reconnects_total") >= 1, "the NATS reconnect counted")
        await until(lambda: m("cift_redis_reconnects_total") >= 1, "the Redis reconnect counted")
        await until(lambda: m("cift_nats_exec_pending") == 0, "the reports sent after the outage")
        assert m("cift_nats_published_through_seq") >= 3
        assert m("cift_nats_exec_republished_total") == 0
        assert d.stop() == 0
        (d.data_dir / "daemon.json").unlink(missing_ok=True)
        d = start(tmp_path / "d", nats_overrides(nats_server.url, redis_url))
        assert m("cift_nats_exec_republished_total") == 0  # a clean stop published everything
    finally:
        await nc.close()
        d.stop()


async def test_symbol_state_changes_are_published_as_market_data(
    nats_server: NatsServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A halt / open / close (a trading control, docs/risk.md) goes out on md.<symbol>.status
    with the control's sequence number."""
    accounts = base_config(tmp_path)["accounts"] + [{"id": 100, "token": "t100", "admin": True}]
    d = start(tmp_path / "d", {**nats_overrides(nats_server.url), "accounts": accounts})
    nc = await connect(nats_server.url, "test")
    got: list[dict[str, Any]] = []

    async def on_status(msg: Any) -> None:
        got.append(orjson.loads(msg.data))

    admin = await Client.connect("127.0.0.1", d.gateway_port, 100, "t100")
    try:
        await subscribed(nc, "md.AAPL.status", on_status)
        halt = await admin.admin("haltSymbol", symbol="AAPL")
        reopen = await admin.admin("openSymbol", symbol="AAPL")
        refused = await admin.admin("closeSymbol", symbol="NOPE")
        assert (halt.code, reopen.code, refused.code) == (0, 0, 2001)
        await until(lambda: len(got) >= 2, "two status messages", 10)
        assert [(m["symbol"], m["state"], m["cmdSeq"]) for m in got] == [
            ("AAPL", "halted", halt.cmd_seq),
            ("AAPL", "open", reopen.cmd_seq),
        ]
    finally:
        await admin.close()
        await nc.close()
        d.stop()
