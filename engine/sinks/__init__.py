"""PostgreSQL and ClickHouse sinks fed by the order book's event records, and the analytics on
them. See docs/sinks.md.

    sink = Sink(PostgresBackend(dsn), symbols=names, source=journal_replay, metrics=m)
    sink.start(); sink.offer(SinkBatch(symbol, commands, events, after_seq, through_seq))
"""

from engine.sinks.backend import Backend, SinkState
from engine.sinks.clickhouse import ClickHouseBackend
from engine.sinks.convert import BatchError, Converter, Flush, Outcome
from engine.sinks.metrics import SinkMetrics
from engine.sinks.postgres import PostgresBackend
from engine.sinks.records import SinkBatch
from engine.sinks.runner import CatchUp, Sink
from engine.sinks.tail import JournalHead, ReplayBooks, replay, tail_journal

__all__ = [
    "Backend",
    "BatchError",
    "CatchUp",
    "ClickHouseBackend",
    "Converter",
    "Flush",
    "JournalHead",
    "Outcome",
    "PostgresBackend",
    "ReplayBooks",
    "Sink",
    "SinkBatch",
    "SinkMetrics",
    "SinkState",
    "replay",
    "tail_journal",
]
