//! Snapshot and restore.

use super::{C, H};
use crate::book::{Book, SnapshotError};
use crate::types::{OrderBook, Side};

fn sample() -> H {
    let mut h = H::new();
    h.setup([
        C::buy(100, 10).display(3).client(5),
        C::buy(99, 4).gtd(9_000).acct(2),
        C::sell(101, 7).tif(crate::types::Tif::Day),
        C::sell(101, 2).acct(3).group(4),
        C::buy(101, 3).acct(4),
        C::stop(Side::Buy, 110, 0, 5).acct(2),
        C::stop(Side::Sell, 90, 89, 6).acct(3),
        C::stop(Side::Sell, 90, 0, 1).acct(3),
    ]);
    h
}

#[test]
fn snapshot_round_trip_preserves_every_query() {
    let h = sample();
    let r = Book::restore(&h.book.snapshot()).expect("restores");
    for side in [Side::Buy, Side::Sell] {
        assert_eq!(r.depth(side, 10), h.book.depth(side, 10));
        assert_eq!(r.stop_orders(side), h.book.stop_orders(side));
        for l in h.book.depth(side, 10) {
            assert_eq!(
                r.level_orders(side, l.price),
                h.book.level_orders(side, l.price)
            );
        }
    }
    for id in 0..12 {
        assert_eq!(r.order(id), h.book.order(id));
    }
    assert_eq!(r.stats(), h.book.stats());
    assert_eq!(r.config(), h.book.config());
    assert_eq!(r.order_count(), h.book.order_count());
    assert_eq!(r.digest(), h.book.digest());
}

#[test]
fn restored_book_emits_identical_events_for_the_same_commands() {
    let mut a = sample();
    let mut b = H {
        book: Book::restore(&a.book.snapshot()).expect("restores"),
        seq: a.seq,
        ts: a.ts,
    };
    let next = [
        C::sell(99, 20).acct(9),
        C::buy(100, 1).acct(2),
        C::amend(1, 98, 2),
        C::market(Side::Buy, 30).acct(7),
        C::buy(95, 3).acct(4),
        C::sell(88, 9).acct(8),
        C::advance(9_000, true),
        C::mass(3, 0),
    ];
    for c in next {
        assert_eq!(a.events(c), b.events(c));
    }
    assert_eq!(a.book.snapshot(), b.book.snapshot());
}

#[test]
fn equal_states_give_equal_bytes_and_digests() {
    assert_eq!(sample().book.snapshot(), sample().book.snapshot());
    let mut h = sample();
    let d = h.book.digest();
    h.setup([C::buy(50, 1)]);
    assert_ne!(h.book.digest(), d);
}

#[test]
fn restore_rejects_bad_magic_and_unknown_versions() {
    let mut s = sample().book.snapshot();
    assert_eq!(Book::restore(b"nope").err(), Some(SnapshotError::BadMagic));
    assert_eq!(Book::restore(&[]).err(), Some(SnapshotError::BadMagic));
    s[8] = 9;
    assert_eq!(
        Book::restore(&s).err(),
        Some(SnapshotError::UnsupportedVersion(9))
    );
    s[0] = b'X';
    assert_eq!(Book::restore(&s).err(), Some(SnapshotError::BadMagic));
}

#[test]
fn restore_rejects_every_truncation() {
    let s = sample().book.snapshot();
    for n in 0..s.len() {
        assert!(Book::restore(&s[..n]).is_err(), "prefix of {n} bytes");
    }
    let mut longer = s.clone();
    longer.push(0);
    assert!(Book::restore(&longer).is_err());
}

#[test]
fn restore_detects_flipped_bits() {
    let s = sample().book.snapshot();
    for i in 12..s.len() {
        let mut t = s.clone();
        t[i] ^= 0x10;
        assert!(Book::restore(&t).is_err(), "byte {i} flipped");
    }
}

#[test]
fn restore_refuses_a_consistent_checksum_over_an_inconsistent_book() {
    let mut h = H::new();
    h.setup([C::buy(100, 1), C::sell(101, 1)]);
    let mut s = h.book.snapshot();
    // Header 100 bytes; bid side: count, level (price, count), one 101-byte order; then asks.
    let ask_level = 100 + 4 + 12 + 101 + 4;
    let ask_order_price = ask_level + 12 + 32;
    for at in [ask_level, ask_order_price] {
        s[at..at + 8].copy_from_slice(&99i64.to_le_bytes());
    }
    let body = s.len() - 8;
    let sum = crate::book::snapshot::fnv1a(&s[..body]);
    s[body..].copy_from_slice(&sum.to_le_bytes());
    match Book::restore(&s) {
        Err(SnapshotError::Corrupt(msg)) => assert!(msg.contains("crossed"), "{msg}"),
        other => panic!("expected a corrupt snapshot, got {other:?}"),
    }
}

#[test]
fn restore_never_panics_on_garbage() {
    let mut r = super::Rng(0x9e37_79b9_7f4a_7c15);
    let s = sample().book.snapshot();
    for _ in 0..2_000 {
        let mut t = s.clone();
        for _ in 0..1 + r.below(4) {
            let i = r.below(t.len() as u64) as usize;
            t[i] = r.next() as u8;
        }
        t.truncate(r.below(t.len() as u64 + 1) as usize);
        let _ = Book::restore(&t);
    }
}
