"""The LOBSTER oracle: real NASDAQ data and small LOBSTER-format files through the native book."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from engine.book import COMMAND_SIZE, Book, CmdKind, Side, decode_commands
from perf.lobster import check, lobster_commands, main
from perf.lobster_replay import ACCOUNT_RESTING

DATA = Path(__file__).parents[1].parent / "shared" / "data" / "lobster"
DUMMY = 9_999_999_999

Msg = tuple[int, int, int, int, int]  # type, order id, size, price, direction
Lvl = tuple[int, int]


def row(asks: list[Lvl], bids: list[Lvl], levels: int = 2) -> list[int]:
    """An orderbook row: ask price, ask size, bid price, bid size per level; then dummies."""
    out: list[int] = []
    for i in range(levels):
        ask = asks[i] if i < len(asks) else (DUMMY, 0)
        bid = bids[i] if i < len(bids) else (-DUMMY, 0)
        out += [*ask, *bid]
    return out


def write_pair(
    tmp_path: Path,
    steps: list[tuple[Msg, list[int]]],
    levels: int = 2,
    times: list[int] | None = None,
) -> Path:
    """Write a LOBSTER message/orderbook pair (line i at 34200 s + times[i] ns, default i);
    return the message file's path."""
    msg_lines, book_lines = [], []
    for i, ((kind, oid, size, price, direction), cols) in enumerate(steps):
        t = i if times is None else times[i]
        msg_lines.append(f"34200.{t:09d},{kind},{oid},{size},{price},{direction}\n")
        book_lines.append(",".join(map(str, cols)) + "\n")
    stem = "TEST_2012-06-21_34200000_57600000"
    msg = tmp_path / f"{stem}_message_{levels}.csv"
    msg.write_text("".join(msg_lines))
    (tmp_path / f"{stem}_orderbook_{levels}.csv").write_text("".join(book_lines))
    return msg


# A level-2 day in miniature. Before line 1 the book holds asks 10100x300, 10200x200 and bids
# 10000x500, 9900x100, all from orders the file never shows (seeds).
ASKS = [(10100, 300), (10200, 200)]
MINI: list[tuple[Msg, list[int]]] = [
    ((5, 0, 50, 10050, -1), row(ASKS, [(10000, 500), (9900, 100)])),  # hidden: no change
    ((1, 11, 50, 10000, 1), row(ASKS, [(10000, 550), (9900, 100)])),  # new buy behind the seed
    ((2, 7, 100, 10000, 1), row(ASKS, [(10000, 450), (9900, 100)])),  # unknown id: the seed
    ((4, 7, 400, 10000, 1), row(ASKS, [(10000, 50), (9900, 100)])),  # fills the seed, first
    ((4, 11, 20, 10000, 1), row(ASKS, [(10000, 30), (9900, 100)])),
    ((1, 12, 40, 10000, 1), row(ASKS, [(10000, 70), (9900, 100)])),
    ((2, 11, 10, 10000, 1), row(ASKS, [(10000, 60), (9900, 100)])),  # amend down: keeps place
    ((4, 11, 20, 10000, 1), row(ASKS, [(10000, 40), (9900, 100)])),  # 11 is still first
    ((3, 12, 40, 10000, 1), row(ASKS, [(9900, 100), (9800, 70)])),  # level 2 moves up: unknown
    ((3, 5, 70, 9800, 1), row(ASKS, [(9900, 100), (9700, 10)])),  # on the seed learned at 9800
    ((4, 3, 300, 10100, -1), row([(10200, 200)], [(9900, 100), (9700, 10)])),  # no level 2 ask
    ((1, 13, 10, 10400, -1), row([(10200, 200), (10400, 10)], [(9900, 100), (9700, 10)])),
]


def test_mini_day_matches_every_knowable_level_and_fill(tmp_path: Path) -> None:
    r = check(write_pair(tmp_path, MINI))
    assert r.report == []
    assert r.ok
    assert (r.rows, r.rows_matched) == (12, 12)
    assert (r.executions, r.fills_matched, r.reordered) == (4, 4, 0)
    # Not knowable: bid level 2 after lines 9 and 10 (moved up from beyond level 2) and ask
    # level 2 after line 11 (is there anything past 10200?); each is taken from the file.
    assert r.levels_unknowable == 3
    assert r.levels_compared == 12 * 2 * 2 - 3


def test_cli_reports_counts_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msg = write_pair(tmp_path, MINI)
    orderbook = msg.with_name(msg.name.replace("_message_", "_orderbook_"))
    assert main(["check", str(msg), str(orderbook)]) == 0
    out = capsys.readouterr().out
    assert "rows checked     12" in out
    assert "rows matched     12 (100.000%)" in out
    assert "FIFO fills       4 of 4" in out
    assert "result           OK" in out


def test_zip_holding_both_files_is_accepted(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, MINI)
    archive = tmp_path / "mini.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (msg, msg.with_name(msg.name.replace("_message_", "_orderbook_"))):
            zf.write(f, f"data/{f.name}")
    r = check(archive)
    assert r.ok and r.levels == 2 and r.rows == 12


def test_corrupted_orderbook_row_exits_non_zero_and_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = list(MINI)
    bad[5] = (MINI[5][0], row(ASKS, [(10000, 71), (9900, 100)]))  # book has 70 at 10000
    assert main(["check", str(write_pair(tmp_path, bad))]) == 1
    out = capsys.readouterr().out
    assert "row 6 after line 6: 34200.000000005,1,12,40,10000,1" in out
    assert "bid level 1: file (10000, 71), book (10000, 70)" in out
    assert "rows matched     11 (91.667%)" in out
    assert "MISMATCH (1 rows)" in out


def test_level_moving_up_must_lie_beyond_the_known_range(tmp_path: Path) -> None:
    bad = list(MINI)
    # Line 10 deleted all of 9800, which the replay knew: it cannot move up again.
    bad[9] = (MINI[9][0], row(ASKS, [(9900, 100), (9800, 5)]))
    r = check(write_pair(tmp_path, bad))
    assert not r.ok and r.rows_matched == 11
    assert any("inside the range the replay knows" in line for line in r.report)


def test_side_shown_whole_must_stay_empty_past_its_levels(tmp_path: Path) -> None:
    # Row 1 shows one level a side in a level-2 file: the replay knows each side whole.
    steps: list[tuple[Msg, list[int]]] = [
        ((5, 0, 1, 10100, -1), row(ASKS[:1], [(10000, 500)])),
        ((5, 0, 1, 10100, -1), row(ASKS[:1], [(10000, 500), (9800, 5)])),  # from nowhere
    ]
    r = check(write_pair(tmp_path, steps))
    assert not r.ok and r.rows_matched == 1
    assert "bid level 2: file (9800, 5), book empty" in "\n".join(r.report)


def test_first_row_already_holds_the_first_message(tmp_path: Path) -> None:
    # Line 1 adds order 21 (30 lots) at 10000: row 1 shows 530, of which 500 are older orders.
    steps: list[tuple[Msg, list[int]]] = [
        ((1, 21, 30, 10000, 1), row(ASKS, [(10000, 530)])),
        ((4, 9, 500, 10000, 1), row(ASKS, [(10000, 30)])),  # the older orders fill first
        ((4, 21, 30, 10000, 1), row(ASKS, [])),
    ]
    r = check(write_pair(tmp_path, steps))
    assert r.ok and (r.executions, r.fills_matched, r.reordered) == (2, 2, 0)


def test_sweep_listed_out_of_queue_order_is_one_aggressor(tmp_path: Path) -> None:
    # Orders 31 then 32 rest at 10100; one aggressor takes both, LOBSTER lists 32 first.
    steps: list[tuple[Msg, list[int]]] = [
        ((5, 0, 1, 10100, -1), row([(10100, 300)], [(10000, 500)])),
        ((1, 31, 4, 10050, -1), row([(10050, 4), (10100, 300)], [(10000, 500)])),
        ((1, 32, 10, 10050, -1), row([(10050, 14), (10100, 300)], [(10000, 500)])),
        ((4, 32, 10, 10050, -1), row([(10050, 4), (10100, 300)], [(10000, 500)])),
        ((4, 31, 4, 10050, -1), row([(10100, 300)], [(10000, 500)])),
    ]
    r = check(write_pair(tmp_path, steps, times=[0, 1, 2, 3, 3]))  # lines 4 and 5: one time
    assert r.ok and (r.executions, r.fills_matched, r.reordered) == (2, 2, 0)


def test_execution_out_of_priority_is_counted_and_strict_mode_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps: list[tuple[Msg, list[int]]] = [
        ((5, 0, 1, 10100, -1), row([(10100, 300)], [(10000, 500)])),
        ((1, 41, 5, 10050, -1), row([(10050, 5), (10100, 300)], [(10000, 500)])),
        ((1, 42, 10, 10050, -1), row([(10050, 15), (10100, 300)], [(10000, 500)])),
        ((4, 42, 10, 10050, -1), row([(10050, 5), (10100, 300)], [(10000, 500)])),  # 41 stays
        ((4, 41, 5, 10050, -1), row([(10100, 300)], [(10000, 500)])),
    ]
    msg = write_pair(tmp_path, steps)
    r = check(msg)
    assert r.ok and (r.executions, r.fills_matched, r.reordered) == (2, 2, 1)
    assert main(["check", str(msg), "--strict-priority"]) == 1
    assert "out-of-priority execution" in capsys.readouterr().out


def test_levels_option_checks_the_top_of_a_deeper_file(tmp_path: Path) -> None:
    r = check(write_pair(tmp_path, MINI), levels=1)
    assert r.ok and r.levels == 1 and r.fills_matched == r.executions == 4
    assert main(["check", str(write_pair(tmp_path, MINI)), "--levels", "3"]) == 2


def test_lobster_commands_is_the_replayed_stream_seeds_first(tmp_path: Path) -> None:
    stream = lobster_commands(write_pair(tmp_path, MINI))
    assert len(stream) % COMMAND_SIZE == 0
    cmds = decode_commands(stream)
    assert [c.seq for c in cmds] == list(range(1, len(cmds) + 1))
    seeds = cmds[:4]  # row 1: two levels a side
    assert all(c.kind == CmdKind.NEW and c.account == ACCOUNT_RESTING for c in seeds)
    assert sorted((c.side, c.price, c.qty) for c in seeds) == [
        (Side.BUY, 9900, 100),
        (Side.BUY, 10000, 500),
        (Side.SELL, 10100, 300),
        (Side.SELL, 10200, 200),
    ]
    book = Book()
    book.apply(stream)
    assert [(p, q) for p, q, _ in book.depth(Side.BUY, 2)] == [(9900, 100), (9700, 10)]
    assert [(p, q) for p, q, _ in book.depth(Side.SELL, 2)] == [(10200, 200), (10400, 10)]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"no LOBSTER sample data at {DATA}")
def test_real_nasdaq_day_matches_every_knowable_level_and_fifo_fill() -> None:
    r = check(DATA / "LOBSTER_SampleFile_GOOG_2012-06-21_1.zip")
    assert r.report == []
    assert r.ok
    assert r.rows == r.rows_matched == r.messages == 49_482
    assert r.executions > 7_000
    assert r.fills_matched == r.executions
