//! Round trips through the codec: request frames -> decoder -> command records, and event
//! records -> publisher -> reply frames -> report records. Plus: hostile bytes never panic.

use proptest::prelude::*;

use super::client::{
    decode_replies, encode_heartbeat, encode_logon, encode_request, ReportKind, REPORT_SIZE,
};
use super::{
    Control, Decoded, Decoder, FrameError, Publisher, SymbolSpec, SymbolsOf, ALL_SYMBOLS, NO_SYMBOL,
};
use crate::types::{CmdKind, Command, Event, EventKind, COMMAND_SIZE, EVENT_SIZE};

const MAX_FRAME: usize = 4096;

fn decoder() -> Decoder {
    Decoder::new(&["AAPL", "MSFT"], MAX_FRAME)
}

fn new_order(client_id: u64, side: u8, price: i64, qty: i64) -> Command {
    Command {
        kind: CmdKind::New as u8,
        side,
        ord_type: 1,
        tif: 1,
        client_id,
        price,
        qty,
        ..Command::default()
    }
}

fn frames(cmds: &[(Command, &str)]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (c, s) in cmds {
        encode_request(c, s, &mut buf);
    }
    buf
}

fn commands(d: &Decoded) -> Vec<(Command, u32)> {
    d.commands
        .chunks_exact(COMMAND_SIZE)
        .filter_map(Command::decode)
        .zip(
            d.symbols
                .chunks_exact(4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])),
        )
        .collect()
}

fn reject_codes(d: &Decoded) -> Vec<u16> {
    d.rejects
        .chunks_exact(EVENT_SIZE)
        .filter_map(Event::decode)
        .map(|e| e.code)
        .collect()
}

#[test]
fn every_trading_message_decodes_to_its_command_record_with_the_session_account() {
    let stop = Command {
        kind: CmdKind::New as u8,
        side: 2,
        ord_type: 4,
        tif: 3,
        stp: 4,
        flags: 1,
        client_id: 9,
        price: 100,
        stop_price: 105,
        qty: 30,
        display_qty: 10,
        expire_ts: 77,
        stp_group: 5,
        ..Command::default()
    };
    let cancel = Command {
        kind: CmdKind::Cancel as u8,
        order_id: 12,
        client_id: 3,
        ..Command::default()
    };
    let amend = Command {
        kind: CmdKind::Amend as u8,
        order_id: 12,
        price: 99,
        qty: 4,
        ..Command::default()
    };
    let mass = Command {
        kind: CmdKind::MassCancel as u8,
        side: 1,
        ..Command::default()
    };
    let sent = [
        (new_order(1, 1, 100, 10), "AAPL"),
        (stop, "MSFT"),
        (cancel, "AAPL"),
        (amend, "AAPL"),
        (mass, ""),
        (new_order(2, 1, 100, 10), "NOPE"),
    ];
    let buf = frames(&sent);
    let mut d = decoder();
    let mut out = Decoded::default();
    d.decode(&buf, 7, &mut out);
    assert_eq!(out.consumed, buf.len());
    assert_eq!(out.error, None);
    assert!(out.rejects.is_empty());
    let got = commands(&out);
    let want: Vec<(Command, u32)> = sent
        .iter()
        .zip([0, 1, 0, 0, ALL_SYMBOLS, NO_SYMBOL])
        .map(|((c, _), s)| (Command { account: 7, ..*c }, s))
        .collect();
    assert_eq!(got, want);
    assert_eq!(d.stats().new_orders, 3);
}

#[test]
fn trading_before_logon_is_rejected_per_frame_with_1005() {
    let buf = frames(&[
        (new_order(1, 1, 100, 10), "AAPL"),
        (new_order(2, 1, 100, 10), "AAPL"),
    ]);
    let mut out = Decoded::default();
    decoder().decode(&buf, 0, &mut out);
    assert_eq!(out.consumed, buf.len());
    assert_eq!(out.command_count(), 0);
    assert_eq!(reject_codes(&out), vec![1005, 1005]);
    let first = Event::decode(&out.rejects).unwrap_or_default();
    assert_eq!(
        (first.kind, first.client_id, first.qty),
        (EventKind::Rejected as u8, 1, 10)
    );
}

#[test]
fn a_control_message_stops_the_walk_so_the_caller_handles_it_first() {
    let mut buf = Vec::new();
    encode_logon(7, "secret", &mut buf);
    let logon_len = buf.len();
    encode_request(&new_order(1, 1, 100, 10), "AAPL", &mut buf);
    encode_heartbeat(42, &mut buf);
    let mut d = decoder();
    let mut out = Decoded::default();
    d.decode(&buf, 0, &mut out);
    assert_eq!(out.consumed, logon_len);
    assert_eq!(
        out.control,
        Some(Control::Logon {
            account: 7,
            token: "secret".into(),
            version: 1
        })
    );
    let rest = &buf[logon_len..];
    d.decode(rest, 7, &mut out);
    assert_eq!(out.command_count(), 1);
    assert_eq!(out.control, Some(Control::Heartbeat { id: 42 }));
    assert_eq!(out.consumed, rest.len());
}

#[test]
fn a_partial_frame_waits_for_the_rest() {
    let buf = frames(&[
        (new_order(1, 1, 100, 10), "AAPL"),
        (new_order(2, 1, 100, 10), "AAPL"),
    ]);
    let mut d = decoder();
    let mut out = Decoded::default();
    for cut in [0, 1, 3, 4, 5, buf.len() / 2, buf.len() - 1] {
        d.decode(&buf[..cut], 7, &mut out);
        assert!(out.consumed <= cut);
        assert_eq!(out.command_count(), usize::from(out.consumed > 0));
        assert_eq!(out.error, None);
    }
}

#[test]
fn framing_errors_stop_the_session() {
    let mut out = Decoded::default();
    let mut d = decoder();
    let mut big = ((MAX_FRAME + 8) as u32).to_le_bytes().to_vec();
    big.extend_from_slice(&[0u8; 16]);
    d.decode(&big, 7, &mut out);
    assert_eq!(
        out.error,
        Some(FrameError::TooLarge {
            len: MAX_FRAME + 8,
            max: MAX_FRAME
        })
    );
    assert_eq!(out.consumed, 0);
    d.decode(&[5, 0, 0, 0, 1, 2, 3, 4, 5], 7, &mut out);
    assert_eq!(out.error, Some(FrameError::BadLength { len: 5 }));
    // Good frames before the bad one are delivered.
    let mut buf = frames(&[(new_order(1, 1, 100, 10), "AAPL")]);
    let good = buf.len();
    buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    d.decode(&buf, 7, &mut out);
    assert_eq!((out.consumed, out.command_count()), (good, 1));
    assert!(out.error.is_some());
}

#[test]
fn well_framed_garbage_and_unknown_messages_are_rejected_and_the_session_goes_on() {
    let mut buf = Vec::new();
    // A frame of 16 bytes of garbage: the segment table claims more words than there are.
    buf.extend_from_slice(&16u32.to_le_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0, 200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    // A heartbeat with its union discriminant patched to an unknown member.
    let mut hb = Vec::new();
    encode_heartbeat(1, &mut hb);
    // 4 length + 8 segment table + 8 root pointer: the discriminant is the first data u16.
    hb[20] = 99;
    buf.extend_from_slice(&hb);
    encode_request(&new_order(1, 1, 100, 10), "AAPL", &mut buf);
    let mut out = Decoded::default();
    decoder().decode(&buf, 7, &mut out);
    assert_eq!(out.consumed, buf.len());
    assert_eq!(reject_codes(&out), vec![1003, 1004]);
    assert_eq!(out.command_count(), 1);
}

fn publisher() -> Publisher {
    let spec = |name: &str| SymbolSpec {
        name: name.into(),
        tick_size: 1,
        lot_size: 1,
        price_precision: 2,
        min_price: 1,
        max_price: 1_000_000,
        max_order_qty: 1_000,
    };
    Publisher::new(vec![spec("AAPL"), spec("MSFT")])
}

fn ev(kind: EventKind, account: u64, order_id: u64) -> Event {
    Event {
        kind: kind as u8,
        side: 1,
        seq: order_id,
        order_id,
        account,
        client_id: order_id + 100,
        price: 50,
        qty: 5,
        leaves: 5,
        ..Event::default()
    }
}

fn drained(p: &mut Publisher) -> Vec<(u64, Vec<u8>)> {
    let mut v = Vec::new();
    p.drain(|sid, bytes| {
        let mut reports = Vec::new();
        assert_eq!(
            decode_replies(bytes, 1 << 20, &mut reports),
            Ok(bytes.len())
        );
        v.push((sid, reports));
    });
    v
}

fn kinds(reports: &[u8]) -> Vec<(u8, u64, u64)> {
    reports
        .chunks_exact(REPORT_SIZE)
        .map(|r| {
            (
                r[0],
                u64::from_le_bytes(r[8..16].try_into().unwrap_or_default()),
                u64::from_le_bytes(r[16..24].try_into().unwrap_or_default()),
            )
        })
        .collect()
}

#[test]
fn reports_go_to_their_accounts_session_numbered_without_gaps() {
    let mut p = publisher();
    p.open_session(1);
    p.open_session(2);
    assert!(p.bind(1, 70));
    assert!(p.bind(2, 80));
    assert!(!p.bind(2, 70), "one session per account");
    p.add_logon_ack(1, 70, 30_000);
    let trade = Event {
        kind: EventKind::Trade as u8,
        side: 2,
        seq: 9,
        order_id: 3,
        account: 80,
        client_id: 33,
        price: 50,
        qty: 2,
        leaves: 1,
        counter_id: 9,
        counter_account: 70,
        counter_client_id: 99,
        aux: 1,
        aux2: 0,
        ..Event::default()
    };
    let level = Event {
        kind: EventKind::Level as u8,
        side: 1,
        price: 50,
        qty: 5,
        ..Event::default()
    };
    let mut events = Vec::new();
    for e in [
        ev(EventKind::Accepted, 70, 9),
        trade,
        level,
        ev(EventKind::Cancelled, 555, 4),
    ] {
        e.encode(&mut events);
    }
    p.add_events(&events, SymbolsOf::One(0));
    let out = drained(&mut p);
    assert_eq!(out.len(), 2);
    let (s1, r1) = &out[0];
    assert_eq!(*s1, 1);
    assert_eq!(
        kinds(r1),
        vec![
            (ReportKind::LogonAck as u8, 1, 1),
            (ReportKind::Ack as u8, 2, 9),
            (ReportKind::Fill as u8, 3, 9)
        ]
    );
    // The taker's fill: aggressor flag, its own side, its open quantity after the trade.
    let taker = &r1[2 * REPORT_SIZE..];
    assert_eq!((taker[1], taker[3]), (1, 1));
    let (s2, r2) = &out[1];
    assert_eq!(*s2, 2);
    assert_eq!(kinds(r2), vec![(ReportKind::Fill as u8, 1, 3)]);
    let st = p.stats();
    assert_eq!((st.levels, st.unroutable, st.fills), (1, 1, 2));
    // Nothing pending after a drain; numbering continues.
    assert!(drained(&mut p).is_empty());
    p.add_heartbeat(2, 5);
    assert_eq!(
        kinds(&drained(&mut p)[0].1),
        vec![(ReportKind::Heartbeat as u8, 2, 5)]
    );
}

#[test]
fn a_closed_session_frees_its_account_and_drops_pending_output() {
    let mut p = publisher();
    p.open_session(1);
    assert!(p.bind(1, 70));
    let mut events = Vec::new();
    ev(EventKind::Accepted, 70, 1).encode(&mut events);
    p.add_events(&events, SymbolsOf::One(0));
    p.close_session(1);
    assert!(drained(&mut p).is_empty());
    assert_eq!(p.session_of(70), None);
    p.open_session(2);
    assert!(p.bind(2, 70));
}

#[test]
fn gateway_rejects_reach_a_session_before_logon_with_their_text() {
    let mut p = publisher();
    p.open_session(4);
    let mut out = Decoded::default();
    decoder().decode(&frames(&[(new_order(1, 1, 100, 10), "AAPL")]), 0, &mut out);
    p.add_for_session(4, &out.rejects);
    let got = drained(&mut p);
    let r = &got[0].1;
    assert_eq!(r[0], ReportKind::Reject as u8);
    assert_eq!(u16::from_le_bytes([r[4], r[5]]), 1005);
}

proptest! {
    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), account in 0u64..3) {
        let mut out = Decoded::default();
        let mut d = decoder();
        d.decode(&bytes, account, &mut out);
        prop_assert!(out.consumed <= bytes.len());
        let mut reports = Vec::new();
        let _ = decode_replies(&bytes, MAX_FRAME, &mut reports);
    }

    #[test]
    fn valid_frames_with_flipped_bytes_never_panic(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8)) {
        let mut buf = frames(&[(new_order(1, 1, 100, 10), "AAPL"), (new_order(2, 2, 100, 10), "MSFT")]);
        let len = buf.len();
        for (i, b) in flips {
            buf[i % len] = b;
        }
        let mut out = Decoded::default();
        decoder().decode(&buf, 7, &mut out);
        prop_assert!(out.consumed <= buf.len());
    }
}

// ---------------------------------------------------------------- the template fast path

type Walk = (Vec<u8>, Vec<u8>, Vec<u8>, usize);

/// `buf` through a decoder with the fast path and one without: (commands, symbols, rejects,
/// consumed) of each.
fn both_paths(buf: &[u8], account: u64) -> [Walk; 2] {
    both_paths_counted(buf, account).map(|(w, _)| w)
}

/// `both_paths` with each decoder's count of fast-path decodes.
fn both_paths_counted(buf: &[u8], account: u64) -> [(Walk, u64); 2] {
    [true, false].map(|fast| {
        let mut d = Decoder::new(&["AAPL", "MSFT", "BTC-USD", "A"], MAX_FRAME);
        d.set_fast_path(fast);
        let mut out = Decoded::default();
        let mut all = (Vec::new(), Vec::new(), Vec::new(), 0);
        let mut pos = 0;
        loop {
            d.decode(&buf[pos..], account, &mut out);
            all.0.extend_from_slice(&out.commands);
            all.1.extend_from_slice(&out.symbols);
            all.2.extend_from_slice(&out.rejects);
            pos += out.consumed;
            if out.control.is_none() || out.consumed == 0 {
                break;
            }
        }
        all.3 = pos;
        (all, d.stats().fast_path)
    })
}

#[test]
fn the_fast_path_has_a_template_for_every_trading_kind_and_symbol() {
    let names: Vec<Box<[u8]>> = ["AAPL", "MSFT", "BTC-USD", "A"]
        .iter()
        .map(|s| s.as_bytes().into())
        .collect();
    assert_eq!(super::fast::FastPath::new(&names).templates(), 3 * 4);
}

#[test]
fn the_fast_path_decodes_what_the_full_reader_decodes() {
    let mut full = new_order(9, 2, 12_345, 77);
    full.ord_type = 4;
    full.tif = 3;
    full.stp = 2;
    full.flags = crate::types::FLAG_POST_ONLY;
    full.stop_price = 12_000;
    full.display_qty = 7;
    full.expire_ts = 1 << 62;
    full.stp_group = u64::MAX;
    let cancel = Command {
        kind: CmdKind::Cancel as u8,
        order_id: 5,
        client_id: 6,
        ..Command::default()
    };
    let amend = Command {
        kind: CmdKind::Amend as u8,
        order_id: 5,
        price: -1,
        qty: i64::MIN,
        ..Command::default()
    };
    let buf = frames(&[
        (full, "BTC-USD"),
        (cancel, "A"),
        (amend, "MSFT"),
        (full, "NOPE"),
        (cancel, ""),
    ]);
    let [(fast, hits), (slow, none)] = both_paths_counted(&buf, 7);
    assert_eq!(fast, slow);
    assert_eq!(
        (hits, none),
        (3, 0),
        "the known symbols' frames took the fast path"
    );
    let cmds: Vec<Command> = fast
        .0
        .chunks_exact(COMMAND_SIZE)
        .filter_map(Command::decode)
        .collect();
    assert_eq!(cmds[0], Command { account: 7, ..full });
    assert_eq!(
        cmds[2],
        Command {
            account: 7,
            ..amend
        }
    );
    // Not logged on: the same rejects either way.
    let [fast, slow] = both_paths(&buf, 0);
    assert_eq!(fast, slow);
    assert_eq!(fast.2.len(), 5 * EVENT_SIZE);
}

proptest! {
    #[test]
    fn fast_and_full_reader_agree_on_any_fields(
        kind in prop_oneof![Just(CmdKind::New), Just(CmdKind::Cancel), Just(CmdKind::Amend)],
        enums in proptest::array::uniform4(0u8..6),
        post_only in any::<bool>(),
        words in proptest::array::uniform8(any::<u64>()),
        symbol in prop_oneof![Just("AAPL"), Just("MSFT"), Just("BTC-USD"), Just("A"), Just("ZZ")],
    ) {
        let c = Command {
            kind: kind as u8,
            side: enums[0],
            ord_type: enums[1],
            tif: enums[2],
            stp: enums[3],
            flags: if post_only { crate::types::FLAG_POST_ONLY } else { 0 },
            order_id: words[0],
            client_id: words[1],
            price: words[2] as i64,
            stop_price: words[3] as i64,
            qty: words[4] as i64,
            display_qty: words[5] as i64,
            expire_ts: words[6],
            stp_group: words[7],
            ..Command::default()
        };
        let buf = frames(&[(c, symbol)]);
        let [fast, slow] = both_paths(&buf, 3);
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn fast_and_full_reader_agree_on_corrupted_frames(
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..6),
    ) {
        let amend = Command { kind: CmdKind::Amend as u8, order_id: 1, qty: 5, ..Command::default() };
        let mut buf = frames(&[(new_order(1, 1, 100, 10), "AAPL"), (amend, "MSFT")]);
        let len = buf.len();
        for (i, b) in flips {
            // keep the length prefixes: a broken one ends the walk the same way on both paths
            let i = i % len;
            if i >= 4 && !(len / 2..len / 2 + 4).contains(&i) {
                buf[i] = b;
            }
        }
        let [fast, slow] = both_paths(&buf, 3);
        prop_assert_eq!(fast, slow);
    }
}
