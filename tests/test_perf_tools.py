"""Smoke tests of the replay-based performance tools (perf/): tiny flows, every tool runs, the
same seed gives the same file, every replay ends with the expected book. No timing assertions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import REPO, Daemon, wait_until
from services import NatsServer

from engine import protocol
from engine.client import Client
from perf import compare, generate, inspect, record, replay, suite, sweep
from perf.flow import Flow, FlowError, Session, Symbol, read_flow, write_flow
from perf.replay_daemon import DaemonProcess
from perf.replay_replies import read_replies
from perf.replay_tcp import fetch_books

LOBSTER_ZIP = Path("/work/shared/data/lobster/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def tiny_flow(path: Path, seed: int = 7, orders: int = 400, **kw: str) -> Path:
    args = ["--seed", str(seed), "--orders", str(orders), "--symbols", "2", "--accounts", "4"]
    args += ["--depth", "4", "--rate", "20000"]
    for k, v in kw.items():
        args += [f"--{k}", v]
    assert generate.main(["synthetic", *args, "--out", str(path)]) == 0
    return path


def replay_json(tmp_path: Path, flow: Path, *args: str, name: str = "r.json") -> dict[str, Any]:
    out = tmp_path / name
    code = replay.main([str(flow), *args, "--json", str(out)])
    results: dict[str, Any] = orjson.loads(out.read_bytes())["results"]
    assert code == 0, results["errors"] + results["book_check"].get("mismatches", [])
    return results


# ---------------------------------------------------------------- the file format and generators


def test_the_same_seed_gives_the_same_file_and_another_seed_another(tmp_path: Path) -> None:
    a = run_tool(
        "perf.generate", "synthetic", "--seed", "3", "--orders", "300", "--out", str(tmp_path / "a")
    )
    assert a.returncode == 0, a.stderr
    tiny_flow(
        tmp_path / "b", seed=3, orders=300, symbols="4", accounts="32", depth="10", rate="10000"
    )
    tiny_flow(
        tmp_path / "c", seed=4, orders=300, symbols="4", accounts="32", depth="10", rate="10000"
    )
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert (tmp_path / "a").read_bytes() != (tmp_path / "c").read_bytes()


def test_a_flow_round_trips_through_its_file(tmp_path: Path) -> None:
    wire = (
        protocol.new_order("XYZ", "buy", 5, 100, client_order_id=1)
        + protocol.new_order("XYZ", "sell", 3, 100, client_order_id=1)
        + protocol.cancel("XYZ", client_order_id=1)
    )
    flow = Flow.build(
        [Symbol("XYZ", tick_size=1)],
        [Session(7), Session(8)],
        {"kind": "test"},
        [0, 5, 9],
        [0, 1, 0],
        wire,
    )
    write_flow(tmp_path / "f", flow)
    back = read_flow(tmp_path / "f")
    assert back.symbols == flow.symbols and back.sessions == flow.sessions
    assert list(back.times) == [0, 5, 9] and list(back.session_of) == [0, 1, 0]
    assert back.wire(range(3)) == wire  # the frames are the TCP wire bytes, unchanged


def test_a_file_that_is_not_a_flow_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"NOTAFLOW" + bytes(64))
    with pytest.raises(FlowError):
        read_flow(tmp_path / "junk")
    flow_file = tiny_flow(tmp_path / "f", orders=50)
    (tmp_path / "cut").write_bytes(flow_file.read_bytes()[:-7])
    with pytest.raises(FlowError, match="truncated"):
        read_flow(tmp_path / "cut")
    assert replay.main([str(tmp_path / "junk")]) == 2


def test_inspect_counts_messages_by_type_and_shows_the_expected_book(tmp_path: Path) -> None:
    flow_file = tiny_flow(tmp_path / "f", orders=500)
    done = run_tool("perf.inspect", str(flow_file), "--json")
    assert done.returncode == 0, done.stderr
    s = orjson.loads(done.stdout)
    flow = read_flow(flow_file)
    assert sum(s["types"].values()) == s["messages"] == len(flow)
    assert set(s["types"]) <= {"newOrder", "cancel", "replace"}
    assert s["symbols"] == ["SYN0", "SYN1"] and s["sessions"] == 4
    assert set(s["expected"]) == {"SYN0", "SYN1"}
    assert inspect.main([str(flow_file)]) == 0


@pytest.mark.skipif(not LOBSTER_ZIP.exists(), reason="no LOBSTER sample data")
def test_a_lobster_day_converts_to_a_flow_that_replays_to_its_expected_book(tmp_path: Path) -> None:
    with zipfile.ZipFile(LOBSTER_ZIP) as z:  # the first 1500 messages: a tiny day
        for name in z.namelist():
            if name.endswith(".csv"):
                lines = z.read(name).decode().splitlines(keepends=True)[:1500]
                (tmp_path / name).write_text("".join(lines))
    message = next(tmp_path.glob("*_message_1.csv"))
    out = tmp_path / "amzn.flow"
    assert generate.main(["lobster", str(message), "--out", str(out)]) == 0
    flow = read_flow(out)
    assert [s.name for s in flow.symbols] == ["AMZN"]
    assert sorted(s.account for s in flow.sessions) == [1, 2]  # resting orders 1, incoming 2
    r = replay_json(tmp_path, out, "--target", "core", "--max")
    assert r["book_check"]["status"] == "match"
    assert r["commands"]["answered"] == r["commands"]["timed"] == len(flow)
    assert r["replies"]["fill"] > 0  # visible executions became incoming orders that traded


# ---------------------------------------------------------------- replay


@pytest.mark.parametrize("target", ["core", "inproc"])
def test_replay_in_process_answers_every_command_and_ends_with_the_expected_book(
    tmp_path: Path, target: str
) -> None:
    flow_file = tiny_flow(tmp_path / "f")
    n = len(read_flow(flow_file))
    for mode in (["--rate", "20000"], ["--max"]):
        r = replay_json(tmp_path, flow_file, "--target", target, *mode)
        assert r["commands"]["sent"] == r["commands"]["answered"] == n
        assert r["book_check"]["status"] == "match"
        assert r["latency_ns"]["samples"] == n
        assert {"p50", "p90", "p99", "p99.9", "p99.99", "max"} <= set(r["latency_ns"])


def test_replay_over_tcp_to_a_fresh_daemon_records_every_reply(tmp_path: Path) -> None:
    flow_file = tiny_flow(tmp_path / "f")
    flow = read_flow(flow_file)
    replies = tmp_path / "replies.bin"
    png = tmp_path / "r.png"
    r = replay_json(
        tmp_path,
        flow_file,
        "--target",
        "daemon",
        "--rate",
        "5000",
        "--record-replies",
        str(replies),
        "--plot",
        str(png),
    )
    assert r["book_check"]["status"] == "match"
    assert r["commands"]["answered"] == len(flow)
    assert png.read_bytes()[:8] == PNG_MAGIC
    got = [rep for _, _, rep in read_replies(replies)]
    new_orders = inspect.flow_summary(flow)["types"]["newOrder"]
    acks = [x for x in got if x.kind == "ack"]
    assert len(acks) == r["replies"]["ack"] == new_orders  # every new order was acknowledged
    assert len({(x.order_id, x.cmd_seq) for x in acks}) == len(acks)
    assert all(x.cmd_seq > 0 for x in got if x.kind in ("ack", "fill", "replaced", "cancelled"))
    done = run_tool("perf.inspect", str(replies), "--json")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["replies"]["ack"] == r["replies"]["ack"]


def test_replay_to_a_running_daemon_logs_on_with_the_token_template(
    tmp_path: Path, daemon: Daemon
) -> None:
    symbols = [Symbol("AAPL", max_price=1_000_000, max_order_qty=1_000_000)]
    wire = b"".join(
        [
            protocol.new_order("AAPL", "sell", 10, 10_100, client_order_id=1),
            protocol.new_order("AAPL", "sell", 5, 10_200, client_order_id=2),
            protocol.new_order("AAPL", "buy", 4, 10_100, client_order_id=1),
            protocol.replace("AAPL", 3, 0, client_order_id=2),
            protocol.cancel("AAPL", client_order_id=1),
        ]
    )
    times = [i * 20_000_000 for i in range(5)]  # 20 ms apart: the two sessions keep their order
    flow = Flow.build(
        symbols, [Session(1), Session(2)], {"kind": "test"}, times, [0, 0, 1, 0, 0], wire
    )
    from perf.replay_engine import expected_books

    flow.expected = expected_books(flow)
    write_flow(tmp_path / "f", flow)
    r = replay_json(
        tmp_path,
        tmp_path / "f",
        "--target",
        f"tcp://127.0.0.1:{daemon.gateway_port}",
        "--token",
        "t{account}",
        "--http",
        f"127.0.0.1:{daemon.http_port}",
    )
    assert r["book_check"]["status"] == "match"
    assert r["replies"]["fill"] == 2 and r["replies"]["replaced"] == 1
    book = daemon.json("/book/AAPL")
    assert book["asks"] == [[10_200, 3, 1]] and book["bids"] == []


def test_a_target_that_cannot_be_used_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow_file = tiny_flow(tmp_path / "f", orders=20)
    assert replay.main([str(flow_file), "--target", "nats://127.0.0.1:1"]) == 2
    assert "cannot connect to NATS at nats://127.0.0.1:1" in capsys.readouterr().err
    assert replay.main([str(flow_file), "--target", "tcp://127.0.0.1:1"]) == 2


@pytest.mark.parametrize("mode", ["rr", "js"])
def test_replay_over_nats_to_a_daemon_answers_every_command_with_the_expected_book(
    tmp_path: Path, mode: str
) -> None:
    flow_file = tiny_flow(tmp_path / "f")
    flow = read_flow(flow_file)
    with NatsServer(tmp_path / "nats") as nats:
        over = {"services": {"nats": True}, "nats": {"url": nats.url}}
        with DaemonProcess(flow.symbols, flow.sessions, overrides=over) as d:
            r = replay_json(
                tmp_path,
                flow_file,
                "--target",
                nats.url,
                "--nats-mode",
                mode,
                "--rate",
                "5000",
                "--http",
                f"{d.host}:{d.http_port}",
            )
            assert d.stop() == 0
    assert r["book_check"]["status"] == "match"
    assert r["commands"]["answered"] == r["commands"]["timed"] > 0
    assert r["latency_ns"]["samples"] == r["commands"]["timed"]
    assert r["replies"]["ack"] == inspect.flow_summary(flow)["types"]["newOrder"]
    if mode == "js":  # every report is read from exec.<account>, fills too
        assert r["replies"]["fill"] > 0


# ---------------------------------------------------------------- record


def test_the_journal_of_a_daemon_records_to_a_flow_with_the_daemons_final_book(
    tmp_path: Path,
) -> None:
    flow = read_flow(tiny_flow(tmp_path / "f"))
    with DaemonProcess(flow.symbols, flow.sessions, data_dir=tmp_path / "d") as d:
        opts = replay.Options(
            target=f"tcp://{d.host}:{d.port}", rate=10_000, http=f"{d.host}:{d.http_port}"
        )
        assert replay.replay(flow, opts)["ok"]
        books = fetch_books(f"{d.host}:{d.http_port}", flow, flow.levels)
    out = tmp_path / "journal.flow"
    code = record.main(
        [
            "journal",
            str(tmp_path / "d" / "data"),
            "--config",
            str(tmp_path / "d" / "engine.toml"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    recorded = read_flow(out)
    assert len(recorded) == len(flow)
    assert recorded.expected == books  # the engine's order, replayed by the model, is its book


async def test_the_proxy_records_what_clients_send(tmp_path: Path, daemon: Daemon) -> None:
    out = tmp_path / "proxy.flow"
    log = tmp_path / "proxy.log"
    with log.open("w") as f:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perf.record",
                "proxy",
                "--upstream",
                f"127.0.0.1:{daemon.gateway_port}",
                "--listen",
                "127.0.0.1:0",
                "--out",
                str(out),
            ],
            cwd=REPO,
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:
        line = wait_until(
            lambda: "connect to" in log.read_text() and log.read_text(), 20, "the proxy"
        )
        port = int(line.split("connect to ")[1].split(",")[0].rsplit(":", 1)[1])
        c = await Client.connect("127.0.0.1", port, 3, "t3")
        try:
            await c.new_order("MSFT", "buy", 5, 9_000, client_order_id=11)
            await c.new_order("MSFT", "buy", 6, 9_001, client_order_id=12)
            await c.cancel("MSFT", client_order_id=11)
            await c.wait_for(lambda r: r.kind == "cancelled")
        finally:
            await c.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, log.read_text()
    flow = read_flow(out)
    assert len(flow) == 3 and [s.account for s in flow.sessions] == [3]
    assert "MSFT" in [s.name for s in flow.symbols]
    assert flow.expected is not None and flow.expected["MSFT"].bids == ((9_001, 6, 1),)


# ---------------------------------------------------------------- sweep, suite, compare


def test_sweep_raises_the_rate_until_the_bound_and_plots(tmp_path: Path) -> None:
    flow_file = tiny_flow(tmp_path / "f", orders=2_000)
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    code = sweep.main(
        [
            str(flow_file),
            "--target",
            "core",
            "--start",
            "500",
            "--factor",
            "2",
            "--max-rate",
            "1000",
            "--step-duration",
            "0.5",
            "--p99-bound-us",
            "10000000",
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert code == 0
    r = orjson.loads(out.read_bytes())["results"]
    assert [s["offered_per_s"] for s in r["steps"]] == [500, 1000]
    assert all(s["book_check"] == "match" for s in r["steps"])
    assert r["sustainable_per_s"] == 1000
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_suite_smoke_runs_and_compare_prints_ratios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = suite.Sizes(5_000, 1, 2_000, 2_000, 5_000, 500, (2_000,), 0.3, 1_000, 500, False)
    monkeypatch.setattr(suite, "QUICK", tiny)
    out = tmp_path / "a.json"
    skip = ["book", "pipeline", "journal", "lobster"]
    assert suite.main(["--quick", "--json", str(out), "--skip", *skip]) == 0
    r = orjson.loads(out.read_bytes())["results"]
    for section in ("core", "inproc", "tcp"):
        for run in r[section].values():
            assert run["book_check"]["status"] == "match", (section, run["book_check"])
    assert {"order_matching_ns", "risk_check_ns", "nats", "clickhouse", "redis"} <= set(
        r["platform"]
    )
    assert "| figure | value | produced by |" in (tmp_path / "a.md").read_text()
    capsys.readouterr()
    assert compare.main([str(out), str(out)]) == 0
    shown = capsys.readouterr().out
    assert "B/A" in shown and "1.000" in shown


def test_compare_marks_figures_better_or_worse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def doc(p99: float, rate: float) -> dict[str, Any]:
        return {
            "tool": "perf.replay",
            "results": {"latency_ns": {"p99": p99}, "achieved_per_s": rate},
        }

    (tmp_path / "a").write_bytes(orjson.dumps(doc(1000, 100)))
    (tmp_path / "b").write_bytes(orjson.dumps(doc(2000, 200)))
    assert compare.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("latency_ns.p99" in x and "2.000" in x and "worse" in x for x in lines)
    assert any("achieved_per_s" in x and "2.000" in x and "better" in x for x in lines)


def test_shards_benchmark_runs_one_and_two_shards_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "shards.json"
    done = run_tool("perf.shards", "--orders", "200", "--window", "50", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "two shards vs one" in done.stdout
    results = orjson.loads(out.read_bytes())["results"]
    for n in (1, 2):
        r = results[f"shards_{n}"]
        assert (r["shards"], r["acked"], r["rejected"]) == (n, 200, 0)


def test_lone_measures_cpu_per_order_of_every_order(tmp_path: Path) -> None:
    out = tmp_path / "lone.json"
    done = run_tool("perf.lone", "--orders", "2500", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "lone orders (fsync none, risk on, lane on: 3500 reads took it)" in done.stdout
    r = orjson.loads(out.read_bytes())["results"]
    assert r["orders"] == 2500 + 1000 - 2000  # the stream (fill + mix) minus the warm-up
    assert r["cpu_us_per_order"] > 0 and r["wall_us_per_order"] >= r["cpu_us_per_order"] * 0.5


def debug_binary(name: str) -> Path:
    """A debug build of one of the crate's binaries (cargo test builds them; else build here)."""
    binary = REPO / "target" / "debug" / name
    if not binary.exists():
        subprocess.run(
            ["cargo", "build", "-q", "-p", "cift-native", "--bin", name],
            cwd=REPO,
            check=True,
            stdin=subprocess.DEVNULL,
            timeout=600,
        )
    return binary


@pytest.mark.parametrize(
    ("server", "client"), [("daemon", "native"), ("daemon", "python"), ("floor", "native")]
)
def test_tcp_load_measures_every_command_after_the_warmup(
    tmp_path: Path, server: str, client: str
) -> None:
    out = tmp_path / "tcp.json"
    args = ["--rate", "2000", "--seconds", "1.5", "--warmup", "0.5", "--json", str(out)]
    args += ["--daemon-cpu", "-1", "--client-cpu", "-1", "--fsync", "none", "--client", client]
    if client == "native":
        args += ["--load-bin", str(debug_binary("cift-load"))]
    if server == "floor":
        args += ["--floor", str(debug_binary("cift-floor"))]
    done = run_tool("perf.tcp", *args)
    assert done.returncode == 0, done.stderr
    assert ("cift-floor" in done.stdout) == (server == "floor")
    assert f"load generator: {client}" in done.stdout
    r = orjson.loads(out.read_bytes())["results"]
    assert r["measured"] == r["commands"] - 1000  # every command but the 0.5 s warm-up
    lat = r["latency_ns"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
