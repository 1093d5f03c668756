"""`perf.sink_floor`: the databases' own ingest ceiling, against a real PostgreSQL and chDB. No
timing assertions: it must write every row of its journal into each database and say so."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
from pg_harness import pg_dsn, pg_server  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def test_the_floor_writes_every_converted_row_into_both_databases(
    tmp_path: Path,
    pg_dsn: str,  # noqa: F811
) -> None:
    out = tmp_path / "floor.json"
    done = subprocess.run(
        [sys.executable, "-m", "perf.sink_floor", "--commands", "8000", "--postgres", pg_dsn,
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = orjson.loads(out.read_bytes())["results"]
    pg, ch = results["sinks"]
    assert (pg["sink"], ch["sink"]) == ("postgres", "clickhouse")
    assert pg["fills"] == ch["fills"] > 0
    assert pg["rows"] == ch["rows"] > pg["fills"]
    assert "fills/s" in done.stdout and "writes only" in done.stdout

    async def count(table: str) -> int:
        conn = await asyncpg.connect(pg_dsn)
        try:
            n: int = await conn.fetchval(f"SELECT count(*) FROM {table}")
            return n
        finally:
            await conn.close()

    assert asyncio.run(count("trades")) == pg["fills"]
