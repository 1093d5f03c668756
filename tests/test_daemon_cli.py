"""The CLI against a real daemon (human and --json output) and the metrics endpoint."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, Daemon, wait_until


def cli(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args, "--config", str(d.config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )


def test_order_prints_its_reports_and_fills(daemon: Daemon) -> None:
    r = cli(daemon, "order", "AAPL", "buy", "10", "10000", "--account", "1", "--token", "t1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("accepted   AAPL order ") and "buy 10 @ 100.00" in r.stdout
    r = cli(daemon, "order", "AAPL", "sell", "4", "9990", "--account", "2", "--token", "t2",
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    reports = json.loads(r.stdout)
    assert [x["kind"] for x in reports] == ["ack", "fill"]
    assert (reports[1]["qty"], reports[1]["price"], reports[1]["aggressor"]) == (4, 10_000, True)


def test_a_rejected_order_exits_1_with_the_reason(daemon: Daemon) -> None:
    r = cli(daemon, "order", "LOT", "buy", "15", "10000", "--account", "1", "--token", "t1")
    assert r.returncode == 1
    assert (
        "rejected" in r.stdout and "2007 quantity is not a multiple of the symbol's lot" in r.stdout
    )


def test_cancel_by_client_id(daemon: Daemon) -> None:
    cli(daemon, "order", "MSFT", "buy", "3", "9000", "--client-id", "55", "--token", "t1")
    r = cli(daemon, "cancel", "MSFT", "--client-id", "55", "--token", "t1", "--json")
    assert r.returncode == 0, r.stderr
    (cancelled,) = json.loads(r.stdout)
    assert (cancelled["kind"], cancelled["qty"], cancelled["reason"]) == ("cancelled", 3, "user")


def test_book_shows_l2_depth_as_a_table_or_json(daemon: Daemon) -> None:
    for price, qty in ((10_000, "5"), (10_000, "7"), (9_990, "1")):
        cli(daemon, "order", "AAPL", "buy", qty, str(price), "--token", "t1")
    cli(daemon, "order", "AAPL", "sell", "2", "10010", "--account", "2", "--token", "t2")
    r = cli(daemon, "book", "AAPL")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[2].split() == ["2", "12", "100.00", "|", "100.10", "2", "1"]
    assert lines[3].split() == ["1", "1", "99.90", "|"]
    d = json.loads(cli(daemon, "book", "AAPL", "--json").stdout)
    assert d["bids"] == [[10_000, 12, 2], [9_990, 1, 1]] and d["asks"] == [[10_010, 2, 1]]
    r = cli(daemon, "book", "NOPE")
    assert r.returncode != 0 and "unknown symbol NOPE" in r.stderr


def test_status_reports_symbols_sessions_and_queues(daemon: Daemon) -> None:
    r = cli(daemon, "status")
    assert r.returncode == 0, r.stderr
    assert "AAPL" in r.stdout and "book:LOT" in r.stdout and "orders/s" in r.stdout
    d = json.loads(cli(daemon, "status", "--json").stdout)
    assert [s["name"] for s in d["symbols"]] == ["AAPL", "MSFT", "LOT"]
    assert {q["actor"] for q in d["queues"]} >= {"risk", "persistence", "publishing", "book:AAPL"}
    assert d["state"] == "running"


async def test_metrics_count_commands_rejects_reports_sessions_and_latency(daemon: Daemon) -> None:
    a, b = await daemon.client(1), await daemon.client(2)
    await a.new_order("AAPL", "buy", 1, 10_000)
    await b.new_order("AAPL", "sell", 1, 10_000)
    await b.new_order("AAPL", "sell", 0, 10_000)  # 3001
    await b.new_order("NOPE", "sell", 1, 10_000)  # 2001
    await b.wait_until(lambda r: r.kind == "reject" and r.code == 2001)
    m = daemon.metric
    assert m("cift_commands_in_total", type="new") == 4
    assert m("cift_rejects_total", code="3001", stage="book") == 1
    assert m("cift_rejects_total", code="2001", stage="risk") == 1
    assert m("cift_events_out_total", type="fill") == 2
    assert m("cift_sessions") == 2
    assert m("cift_e2e_latency_seconds_count") >= 1
    assert m("cift_batch_size_count", actor="risk") >= 1
    assert m("cift_queue_capacity", actor="book:AAPL") == 65536
    assert m("cift_gateway_bytes_total", direction="in") > 0
    await a.close()
    wait_until(lambda: m("cift_session_disconnects_total", reason="client_closed") == 1, 5, "close")


def test_check_config_accepts_a_good_file(daemon: Daemon) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "engine", "check-config", str(daemon.config_file), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.returncode == 0
    assert json.loads(r.stdout) == {
        "ok": True,
        "file": str(daemon.config_file),
        "symbols": ["AAPL", "MSFT", "LOT"],
        "shard": "",
        "warnings": [],
    }
