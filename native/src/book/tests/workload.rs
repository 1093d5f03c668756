//! Random workloads: invariants after every command, batch = one by one, restore determinism.

use super::{batch, decode_events, Rng, C, CFG, H};
use crate::book::Book;
use crate::types::{Command, OrderBook};

/// A random command of any kind, valid or not, around price 100.
pub(super) fn random_command(r: &mut Rng, ts: &mut u64, max_id: u64) -> Command {
    *ts += 1 + r.below(10);
    let mut c = Command {
        ts: *ts,
        account: 1 + r.below(3),
        ..Command::default()
    };
    if r.below(100) == 0 {
        c.account = 0;
    }
    let roll = r.below(100);
    c.kind = match roll {
        0 => 9,
        1..=55 => 1,
        56..=70 => 2,
        71..=93 => 3,
        94..=95 => 4,
        _ => 5,
    };
    match c.kind {
        1 => {
            c.side = if r.below(50) == 0 {
                3
            } else {
                1 + r.below(2) as u8
            };
            c.ord_type = [1, 1, 1, 1, 1, 1, 2, 3, 4, 4][r.below(10) as usize];
            c.tif = [1, 1, 1, 1, 2, 3, 4, 4, 5, 5][r.below(10) as usize];
            if c.ord_type == 2 || c.ord_type == 3 {
                c.tif = if r.below(10) == 0 {
                    1
                } else {
                    4 + r.below(2) as u8
                };
            }
            c.qty = if r.below(100) == 0 { 0 } else { r.range(1, 20) };
            c.price = match c.ord_type {
                2 | 3 if r.below(2) == 0 => 0,
                _ => r.range(90, 110),
            };
            if c.ord_type >= 3 {
                c.stop_price = r.range(92, 108);
            }
            if c.ord_type == 1 && c.qty > 1 && r.below(5) == 0 {
                c.display_qty = r.range(1, c.qty - 1);
            }
            if r.below(3) == 0 {
                c.stp = r.below(5) as u8;
                c.stp_group = r.below(3);
            }
            if r.below(10) == 0 {
                c.flags = 1;
            }
            if r.below(3) == 0 {
                c.client_id = r.range(1, 10) as u64;
            }
            if r.below(10) == 0 {
                c.order_id = 1 + r.below(max_id + 5);
            }
            if c.tif == 3 {
                c.expire_ts = *ts + r.below(3_000);
            }
        }
        2 | 3 => {
            if r.below(4) == 0 {
                c.client_id = r.range(1, 10) as u64;
            } else {
                c.order_id = 1 + r.below(max_id + 2);
            }
            c.price = if r.below(2) == 0 { 0 } else { r.range(89, 111) };
            c.qty = r.range(0, 20);
        }
        4 => c.side = r.below(4) as u8,
        5 => {
            c.ts = *ts + r.below(500);
            c.flags = if r.below(5) == 0 { 2 } else { 0 };
        }
        _ => {}
    }
    c
}

fn commands(seed: u64, n: usize) -> Vec<Command> {
    let mut r = Rng(seed);
    let mut ts = 1_000;
    (0..n)
        .map(|i| {
            let mut c = random_command(&mut r, &mut ts, 2 + i as u64 / 2);
            c.seq = i as u64 + 1;
            c
        })
        .collect()
}

#[test]
fn invariants_hold_after_every_command_of_random_workloads() {
    for seed in 1..=6u64 {
        let mut h = H::new();
        for c in commands(seed * 0x1234_5678_9abc, 1_500) {
            h.seq = c.seq - 1;
            h.events(C(c));
        }
        assert!(h.book.stats().trades > 0, "seed {seed} traded");
    }
}

#[test]
fn apply_batch_equals_apply_one_by_one() {
    let cmds = commands(42, 5_000);
    let mut one = Book::new(CFG);
    let mut evs = Vec::new();
    for c in &cmds {
        one.apply(c, &mut evs);
    }
    let mut many = Book::new(CFG);
    let mut out = Vec::new();
    assert_eq!(many.apply_batch(&batch(&cmds), &mut out), cmds.len());
    assert_eq!(decode_events(&out), evs);
    assert_eq!(many.snapshot(), one.snapshot());
}

#[test]
fn apply_batch_ignores_a_trailing_partial_record() {
    let cmds = commands(7, 3);
    let mut bytes = batch(&cmds);
    bytes.extend_from_slice(&[1; 50]);
    let mut out = Vec::new();
    assert_eq!(Book::new(CFG).apply_batch(&bytes, &mut out), 3);
    assert_eq!(Book::new(CFG).apply_batch(&bytes[..95], &mut out), 0);
}

#[test]
fn restored_book_continues_with_byte_identical_events() {
    let cmds = commands(99, 6_000);
    let (head, tail) = cmds.split_at(3_000);
    let mut a = Book::new(CFG);
    a.apply_batch(&batch(head), &mut Vec::new());
    let mut b = Book::restore(&a.snapshot()).expect("restores");
    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
    a.apply_batch(&batch(tail), &mut out_a);
    b.apply_batch(&batch(tail), &mut out_b);
    assert!(!out_a.is_empty());
    assert_eq!(out_a, out_b);
    assert_eq!(a.digest(), b.digest());
}
