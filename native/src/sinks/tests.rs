use super::*;

fn cmd(seq: u64, ts: u64, kind: u8) -> Vec<u8> {
    let c = Command {
        kind,
        seq,
        ts,
        ..Command::default()
    };
    let mut out = Vec::new();
    c.encode(&mut out);
    out
}

fn ev(e: Event) -> Vec<u8> {
    let mut out = Vec::new();
    e.encode(&mut out);
    out
}

fn u64_col(t: &Table, col: usize) -> Vec<u64> {
    t.cols[col]
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect()
}

#[test]
fn trades_positions_and_book_top_follow_the_events() {
    let mut s = SymbolRows::new(1_000).unwrap();
    let mut cmds = cmd(1, 100, NEW);
    cmds.extend(cmd(2, 200, NEW));
    cmds.extend(cmd(3, 1_500, 2));
    let mut evs = ev(Event {
        kind: ACCEPTED,
        seq: 1,
        order_id: 7,
        account: 1,
        side: 2,
        price: 10,
        qty: 5,
        ..Event::default()
    });
    evs.extend(ev(Event {
        kind: LEVEL,
        seq: 1,
        side: 2,
        price: 10,
        qty: 5,
        aux: 1,
        ..Event::default()
    }));
    evs.extend(ev(Event {
        kind: TRADE,
        seq: 2,
        side: 2,
        order_id: 7,
        account: 1,
        counter_account: 2,
        price: 10,
        qty: 3,
        aux: 1,
        ..Event::default()
    }));
    evs.extend(ev(Event {
        kind: LEVEL,
        seq: 2,
        side: 2,
        price: 10,
        qty: 2,
        aux: 1,
        ..Event::default()
    }));
    assert_eq!(s.apply(&cmds, &evs, 0, 3), Ok(Some(1_500)));
    assert_eq!(s.orders.rows, 1);
    assert_eq!(s.trades.rows, 1);
    assert_eq!(s.top.rows, 1); // bucket 0 closed by seq 3
    assert_eq!(u64_col(&s.top, 0), vec![0]);
    assert_eq!(u64_col(&s.top, 1), vec![2]);
    assert_eq!(u64_col(&s.top, 3), vec![3]);
    let ask_price: Vec<u64> = u64_col(&s.top, 7);
    assert_eq!(ask_price, vec![10]);
    let pos = s.take_positions();
    assert_eq!(pos.len(), 2);
    assert_eq!((pos[0].account, pos[0].pos.position), (1, -3));
    assert_eq!((pos[1].account, pos[1].pos.buy_notional), (2, 30));
    assert!(s.take_positions().is_empty());
    let st = s.top_state();
    assert_eq!((st.bucket, st.bucket_seq, st.last_price), (1_000, 3, 10));
    assert_eq!(st.asks, vec![(10, 2, 1)]);
}

#[test]
fn already_applied_records_are_skipped() {
    let mut s = SymbolRows::new(1_000).unwrap();
    let cmds = cmd(1, 100, NEW);
    let evs = ev(Event {
        kind: ACCEPTED,
        seq: 1,
        ..Event::default()
    });
    assert_eq!(s.apply(&cmds, &evs, 1, 1), Ok(None));
    assert_eq!(s.orders.rows, 0);
}

#[test]
fn an_event_without_its_command_changes_nothing() {
    let mut s = SymbolRows::new(1_000).unwrap();
    let cmds = cmd(1, 100, NEW);
    let mut evs = ev(Event {
        kind: ACCEPTED,
        seq: 1,
        ..Event::default()
    });
    evs.extend(ev(Event {
        kind: ACCEPTED,
        seq: 2,
        ..Event::default()
    }));
    assert_eq!(
        s.apply(&cmds, &evs, 0, 5),
        Err(SinkError::EventWithoutCommand { seq: 2 })
    );
    assert_eq!(s.orders.rows, 0);
    assert_eq!(s.top_state().bucket, NO_BUCKET);
}

#[test]
fn commands_beyond_the_batch_range_are_refused() {
    let mut s = SymbolRows::new(1_000).unwrap();
    assert_eq!(
        s.apply(&cmd(9, 1, NEW), &[], 0, 8),
        Err(SinkError::CommandOrder { seq: 9 })
    );
    assert_eq!(
        s.apply(&cmd(1, 1, NEW)[..5], &[], 0, 8),
        Err(SinkError::CommandBytes(5))
    );
}

#[test]
fn orders_ended_by_a_later_command_get_an_order_ends_row() {
    let mut s = SymbolRows::new(1_000).unwrap();
    s.restore_open(
        11,
        OpenOrder {
            seq: 0,
            ts: 50,
            account: 4,
        },
    );
    let mut cmds = Vec::new();
    for (seq, ts) in [(1, 100), (2, 200), (3, 300), (4, 400), (5, 500), (6, 600)] {
        cmds.extend(cmd(seq, ts, NEW));
    }
    let accepted = |seq: u64, order_id: u64, account: u64| Event {
        kind: ACCEPTED,
        seq,
        order_id,
        account,
        ..Event::default()
    };
    let cancelled = |seq: u64, order_id: u64, leaves: i64| Event {
        kind: CANCELLED,
        seq,
        order_id,
        leaves,
        ..Event::default()
    };
    let mut evs = ev(accepted(1, 7, 1));
    evs.extend(ev(accepted(2, 8, 2)));
    evs.extend(ev(Event {
        kind: TRADE,
        seq: 2,
        side: 2,
        order_id: 7,
        account: 1,
        counter_id: 8,
        counter_account: 2,
        price: 10,
        qty: 5,
        leaves: 0,
        aux: 1,
        aux2: 0,
        ..Event::default()
    }));
    evs.extend(ev(accepted(3, 9, 3)));
    evs.extend(ev(cancelled(4, 9, 2))); // partial: still live
    evs.extend(ev(cancelled(5, 9, 0)));
    evs.extend(ev(cancelled(5, 11, 0)));
    evs.extend(ev(accepted(6, 12, 3)));
    evs.extend(ev(cancelled(6, 12, 0))); // ended by the command that placed it: no row
    assert_eq!(s.apply(&cmds, &evs, 0, 6), Ok(Some(600)));
    assert_eq!(s.ends.rows, 3);
    assert_eq!(u64_col(&s.ends, 0), vec![2, 5, 5]); // seq
    assert_eq!(u64_col(&s.ends, 1), vec![7, 9, 11]); // order_id
    assert_eq!(u64_col(&s.ends, 2), vec![1, 3, 4]); // account
    assert_eq!(u64_col(&s.ends, 3), vec![100, 300, 50]); // accepted ts
    assert_eq!(u64_col(&s.ends, 4), vec![1, 3, 0]); // accepted seq
    assert_eq!(u64_col(&s.ends, 5), vec![200, 500, 500]); // ended ts
    assert_eq!(s.open_orders(), 0);
}
