//! Trading controls as sequenced commands, driven the way the daemon drives them: the
//! sequencer (with the risk engine as its check) stamps and journals each batch, the books get
//! their per-symbol records, their events go back to the risk engine. Then the journal alone,
//! replayed into a fresh risk engine and fresh books, must rebuild the same state.

use cift_native::book::Book;
use cift_native::risk::{AccountLimits, RiskEngine, SymbolRisk};
use cift_native::types::{
    AdminAction, BookConfig, CmdKind, Command, Event, EventKind, LimitKey, OrdType, OrderBook,
    COMMAND_SIZE, EVENT_SIZE,
};
use cift_native::wire::{
    Sequenced, Sequencer, SymbolRules, ADMIN_SYMBOL, ALL_SYMBOLS, JOURNAL_ENTRY_SIZE,
};

const ADMIN: u64 = 900;
const TRADER: u64 = 7;
const NSYM: u32 = 2;

struct Rig {
    seq: Sequencer,
    risk: Option<RiskEngine>,
    books: Vec<Book>,
    out: Sequenced,
    journal: Vec<u8>,
    clock: u64,
}

/// What one batch produced: the reply events (rejects and admin replies) and the book events.
struct Batch {
    replies: Vec<Event>,
    events: Vec<Event>,
}

fn rules() -> SymbolRules {
    SymbolRules {
        tick_size: 1,
        lot_size: 1,
        min_price: 1,
        max_price: 1_000_000,
        reference_price: 0,
        band_bps: 0,
        max_order_qty: 1_000_000,
    }
}

fn book() -> Book {
    Book::new(BookConfig {
        min_price: 1,
        max_price: 1_000_000,
        max_qty: 1_000_000,
    })
}

fn new_risk() -> RiskEngine {
    RiskEngine::new(
        (0..NSYM).map(SymbolRisk::new).collect(),
        AccountLimits::UNLIMITED,
    )
    .expect("valid risk config")
}

fn events(bytes: &[u8]) -> Vec<Event> {
    bytes
        .chunks_exact(EVENT_SIZE)
        .filter_map(Event::decode)
        .collect()
}

impl Rig {
    fn new(with_risk: bool) -> Rig {
        Rig {
            seq: Sequencer::new(vec![rules(); NSYM as usize], 1).expect("rules"),
            risk: with_risk.then(new_risk),
            books: (0..NSYM).map(|_| book()).collect(),
            out: Sequenced::default(),
            journal: Vec::new(),
            clock: 1_000,
        }
    }

    fn run(&mut self, cmds: &[(Command, u32)]) -> Batch {
        let mut recs = Vec::new();
        let mut syms = Vec::new();
        for (c, s) in cmds {
            c.encode(&mut recs);
            syms.extend_from_slice(&s.to_le_bytes());
        }
        self.clock += 1_000;
        match self.risk.as_mut() {
            Some(risk) => {
                self.seq
                    .sequence_with(&recs, &syms, self.clock, &mut self.out, |s, c| {
                        risk.check(s, c).map_err(|r| r.code())
                    })
            }
            None => self.seq.sequence(&recs, &syms, self.clock, &mut self.out),
        }
        .expect("well-formed batch");
        self.journal.extend_from_slice(&self.out.journal);
        let mut book_events = Vec::new();
        for (i, records) in self.out.per_symbol.iter().enumerate() {
            let mut evs = Vec::new();
            for rec in records.chunks_exact(COMMAND_SIZE) {
                let c = Command::decode(rec).expect("record");
                self.books[i].apply(&c, &mut evs);
            }
            let mut bytes = Vec::new();
            for e in &evs {
                e.encode(&mut bytes);
            }
            if let Some(risk) = self.risk.as_mut() {
                risk.on_events(i as u32, &bytes).expect("events");
            }
            book_events.extend(evs);
        }
        Batch {
            replies: events(&self.out.rejects),
            events: book_events,
        }
    }

    fn one(&mut self, c: Command, symbol: u32) -> Batch {
        self.run(&[(c, symbol)])
    }
}

fn admin(action: AdminAction, account: u64, symbol: u32) -> Command {
    Command {
        kind: CmdKind::Admin as u8,
        ord_type: action as u8,
        account,
        order_id: ADMIN,
        client_id: 42,
        stp_group: u64::from(symbol),
        ..Command::default()
    }
}

fn set_limit(account: u64, key: LimitKey, value: i64) -> Command {
    Command {
        tif: key as u8,
        price: value,
        ..admin(AdminAction::SetLimit, account, ALL_SYMBOLS)
    }
}

fn limit(account: u64, client_id: u64, side: u8, price: i64, qty: i64) -> Command {
    Command {
        kind: CmdKind::New as u8,
        side,
        ord_type: OrdType::Limit as u8,
        tif: 1,
        account,
        client_id,
        price,
        qty,
        ..Command::default()
    }
}

fn cancel(account: u64, client_id: u64) -> Command {
    Command {
        kind: CmdKind::Cancel as u8,
        account,
        client_id,
        ..Command::default()
    }
}

/// The one reply of a batch of one admin command: (code, seq), for the admin account.
fn reply(b: &Batch) -> (u16, u64) {
    assert_eq!(b.replies.len(), 1, "one reply: {:?}", b.replies);
    let r = b.replies[0];
    assert_eq!(r.kind, EventKind::Admin as u8);
    assert_eq!(r.account, ADMIN, "the reply goes to the requesting account");
    assert_eq!(r.client_id, 42, "the request id is echoed");
    (r.code, r.seq)
}

fn reject_code(b: &Batch) -> u16 {
    b.replies
        .iter()
        .chain(b.events.iter())
        .find(|e| e.kind == EventKind::Rejected as u8)
        .map_or(0, |e| e.code)
}

fn accepted(b: &Batch) -> bool {
    b.events.iter().any(|e| e.kind == EventKind::Accepted as u8) && b.replies.is_empty()
}

fn journal_symbols(journal: &[u8]) -> Vec<(u8, u32)> {
    journal
        .chunks_exact(JOURNAL_ENTRY_SIZE)
        .map(|e| {
            let s = &e[COMMAND_SIZE..COMMAND_SIZE + 4];
            (e[0], u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        })
        .collect()
}

#[test]
fn kill_switch_cancels_every_order_of_the_account_and_blocks_it_until_turned_off() {
    let mut r = Rig::new(true);
    assert!(accepted(&r.one(limit(TRADER, 1, 1, 100, 5), 0)));
    assert!(accepted(&r.one(limit(TRADER, 2, 2, 200, 5), 1)));
    assert!(accepted(&r.one(limit(8, 3, 1, 99, 5), 0)));
    let before = r.journal.len() / JOURNAL_ENTRY_SIZE;

    let b = r.one(
        admin(AdminAction::KillSwitchOn, TRADER, ALL_SYMBOLS),
        ADMIN_SYMBOL,
    );
    let (code, seq) = reply(&b);
    assert_eq!(code, 0);
    assert!(seq > 0);
    let cancelled: Vec<u64> = b
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Cancelled as u8)
        .map(|e| e.account)
        .collect();
    assert_eq!(
        cancelled,
        vec![TRADER, TRADER],
        "both symbols, only the trader"
    );
    // Journaled: the control (no book) and then a mass cancel of every symbol.
    let tail = &journal_symbols(&r.journal)[before..];
    assert_eq!(
        tail,
        &[
            (CmdKind::Admin as u8, ADMIN_SYMBOL),
            (CmdKind::MassCancel as u8, ALL_SYMBOLS)
        ]
    );
    assert_eq!(reject_code(&r.one(limit(TRADER, 4, 1, 100, 5), 0)), 2005);
    assert!(
        accepted(&r.one(limit(8, 5, 1, 98, 5), 0)),
        "others trade on"
    );

    let (code, _) = reply(&r.one(
        admin(AdminAction::KillSwitchOff, TRADER, ALL_SYMBOLS),
        ADMIN_SYMBOL,
    ));
    assert_eq!(code, 0);
    assert!(accepted(&r.one(limit(TRADER, 6, 1, 100, 5), 0)));
}

#[test]
fn halt_refuses_new_orders_but_accepts_cancels_and_close_refuses_everything() {
    let mut r = Rig::new(true);
    assert!(accepted(&r.one(limit(TRADER, 1, 1, 100, 5), 0)));
    assert!(accepted(&r.one(limit(TRADER, 2, 1, 101, 5), 0)));
    assert_eq!(
        reply(&r.one(admin(AdminAction::HaltSymbol, 0, 0), ADMIN_SYMBOL)).0,
        0
    );
    assert_eq!(reject_code(&r.one(limit(TRADER, 3, 2, 100, 5), 0)), 2003);
    assert!(
        accepted(&r.one(limit(TRADER, 4, 2, 100, 5), 1)),
        "other symbol open"
    );
    let b = r.one(cancel(TRADER, 1), 0);
    assert!(b
        .events
        .iter()
        .any(|e| e.kind == EventKind::Cancelled as u8));
    assert_eq!(
        reply(&r.one(admin(AdminAction::CloseSymbol, 0, 0), ADMIN_SYMBOL)).0,
        0
    );
    assert_eq!(reject_code(&r.one(cancel(TRADER, 2), 0)), 2002);
    assert_eq!(
        reply(&r.one(admin(AdminAction::OpenSymbol, 0, 0), ADMIN_SYMBOL)).0,
        0
    );
    let b = r.one(limit(TRADER, 5, 2, 101, 5), 0);
    assert!(
        b.events.iter().any(|e| e.kind == EventKind::Trade as u8),
        "trades again"
    );
}

#[test]
fn disabled_account_keeps_its_orders_but_cannot_add_any() {
    let mut r = Rig::new(true);
    assert!(accepted(&r.one(limit(TRADER, 1, 1, 100, 5), 0)));
    assert_eq!(
        reply(&r.one(
            admin(AdminAction::DisableAccount, TRADER, ALL_SYMBOLS),
            ADMIN_SYMBOL
        ))
        .0,
        0
    );
    assert_eq!(reject_code(&r.one(limit(TRADER, 2, 1, 100, 5), 0)), 2004);
    assert_eq!(r.books[0].order_count(), 1, "its order stays");
    assert_eq!(
        reply(&r.one(
            admin(AdminAction::EnableAccount, TRADER, ALL_SYMBOLS),
            ADMIN_SYMBOL
        ))
        .0,
        0
    );
    assert!(accepted(&r.one(limit(TRADER, 3, 1, 100, 5), 0)));
}

#[test]
fn admin_mass_cancel_takes_symbol_and_side() {
    let mut r = Rig::new(true);
    assert!(accepted(&r.one(limit(TRADER, 1, 1, 100, 5), 0)));
    assert!(accepted(&r.one(limit(TRADER, 2, 2, 110, 5), 0)));
    assert!(accepted(&r.one(limit(TRADER, 3, 1, 100, 5), 1)));
    let c = Command {
        side: 1,
        ..admin(AdminAction::MassCancel, TRADER, 0)
    };
    let b = r.one(c, ADMIN_SYMBOL);
    assert_eq!(reply(&b).0, 0);
    let gone: Vec<u64> = b
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Cancelled as u8)
        .map(|e| e.client_id)
        .collect();
    assert_eq!(gone, vec![1], "only the buy in symbol 0");
    assert_eq!(r.books[0].order_count() + r.books[1].order_count(), 2);
}

#[test]
fn limits_change_at_run_time_one_key_at_a_time() {
    let mut r = Rig::new(true);
    assert_eq!(
        reply(&r.one(set_limit(TRADER, LimitKey::MaxOpenOrders, 1), ADMIN_SYMBOL)).0,
        0
    );
    assert!(accepted(&r.one(limit(TRADER, 1, 1, 100, 5), 0)));
    assert_eq!(reject_code(&r.one(limit(TRADER, 2, 1, 100, 5), 0)), 2015);
    assert_eq!(
        reply(&r.one(set_limit(TRADER, LimitKey::MaxPosition, 12), ADMIN_SYMBOL)).0,
        0
    );
    assert_eq!(
        reply(&r.one(set_limit(TRADER, LimitKey::MaxOpenOrders, -1), ADMIN_SYMBOL)).0,
        0
    );
    assert_eq!(
        reject_code(&r.one(limit(TRADER, 3, 1, 100, 8), 0)),
        2018,
        "5 + 8 > 12"
    );
    assert!(
        accepted(&r.one(limit(TRADER, 4, 1, 100, 7), 0)),
        "5 + 7 = 12"
    );
    let limits = r.risk.as_ref().expect("risk").limits_of(TRADER);
    assert_eq!(
        (limits.max_open_orders, limits.max_position),
        (u32::MAX, 12)
    );
    assert_eq!(
        reply(&r.one(
            admin(AdminAction::ResetLimits, TRADER, ALL_SYMBOLS),
            ADMIN_SYMBOL
        ))
        .0,
        0
    );
    assert_eq!(
        r.risk.as_ref().expect("risk").limits_of(TRADER),
        AccountLimits::UNLIMITED
    );
}

#[test]
fn bad_requests_get_their_codes_and_take_no_sequence_number() {
    let mut r = Rig::new(true);
    let next = r.seq.next_seq();
    let cases = [
        (admin(AdminAction::HaltSymbol, 0, 9), 2001),
        (admin(AdminAction::HaltSymbol, 0, ALL_SYMBOLS), 2001),
        (admin(AdminAction::MassCancel, TRADER, 9), 2001),
        (admin(AdminAction::KillSwitchOn, 0, ALL_SYMBOLS), 2024),
        (
            Command {
                ord_type: 0,
                ..admin(AdminAction::KillSwitchOn, TRADER, ALL_SYMBOLS)
            },
            2024,
        ),
        (
            Command {
                tif: 99,
                ..set_limit(TRADER, LimitKey::MaxPosition, 1)
            },
            2024,
        ),
        (set_limit(TRADER, LimitKey::MaxPosition, -2), 2025),
        (set_limit(TRADER, LimitKey::RateBurst, 5), 2025),
        (set_limit(TRADER, LimitKey::RatePerSec, 0), 2025),
        (
            set_limit(TRADER, LimitKey::MaxOpenOrders, i64::from(u32::MAX) + 1),
            2025,
        ),
    ];
    for (c, code) in cases {
        let b = r.one(c, ADMIN_SYMBOL);
        assert_eq!(reply(&b), (code, 0), "{c:?}");
    }
    assert_eq!(r.seq.next_seq(), next);
    assert!(r.journal.is_empty());
}

#[test]
fn without_the_risk_engine_only_mass_cancel_works() {
    let mut r = Rig::new(false);
    assert!(accepted(&r.one(limit(TRADER, 1, 1, 100, 5), 0)));
    let b = r.one(
        admin(AdminAction::KillSwitchOn, TRADER, ALL_SYMBOLS),
        ADMIN_SYMBOL,
    );
    assert_eq!(reply(&b), (2023, 0));
    let b = r.one(
        admin(AdminAction::MassCancel, TRADER, ALL_SYMBOLS),
        ADMIN_SYMBOL,
    );
    assert_eq!(reply(&b).0, 0);
    assert_eq!(r.books[0].order_count(), 0);
}

#[test]
fn replaying_the_journal_rebuilds_the_same_risk_state_and_books() {
    let mut r = Rig::new(true);
    let flow = [
        (limit(TRADER, 1, 1, 100, 5), 0),
        (set_limit(TRADER, LimitKey::MaxOpenOrders, 3), ADMIN_SYMBOL),
        (limit(TRADER, 2, 2, 120, 5), 1),
        (admin(AdminAction::HaltSymbol, 0, 1), ADMIN_SYMBOL),
        (limit(8, 3, 2, 100, 2), 0),
        (
            admin(AdminAction::KillSwitchOn, 8, ALL_SYMBOLS),
            ADMIN_SYMBOL,
        ),
        (limit(8, 4, 2, 101, 2), 0),
        (
            admin(AdminAction::DisableAccount, TRADER, ALL_SYMBOLS),
            ADMIN_SYMBOL,
        ),
        (set_limit(9, LimitKey::RatePerSec, 10), ADMIN_SYMBOL),
    ];
    // Two batches, split in the middle: controls act at their place inside a batch.
    r.run(&flow[..4]);
    r.run(&flow[4..]);
    let live = r.risk.as_ref().expect("risk").digest();

    let mut risk = new_risk();
    let mut books: Vec<Book> = (0..NSYM).map(|_| book()).collect();
    let mut symbols = Vec::new();
    let mut cmds = Vec::new();
    for e in r.journal.chunks_exact(JOURNAL_ENTRY_SIZE) {
        let s = &e[COMMAND_SIZE..COMMAND_SIZE + 4];
        symbols.push(u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        cmds.extend_from_slice(&e[..COMMAND_SIZE]);
    }
    for (s, c) in symbols.iter().zip(cmds.chunks_exact(COMMAND_SIZE)) {
        let c = Command::decode(c).expect("record");
        let targets: Vec<u32> = match *s {
            ALL_SYMBOLS => (0..NSYM).collect(),
            ADMIN_SYMBOL => Vec::new(),
            s => vec![s],
        };
        if *s != ALL_SYMBOLS {
            assert_eq!(
                risk.check(*s, &c),
                Ok(()),
                "every journaled command passes again"
            );
        }
        for t in targets {
            let mut evs = Vec::new();
            books[t as usize].apply(&c, &mut evs);
            let mut bytes = Vec::new();
            for e in &evs {
                e.encode(&mut bytes);
            }
            risk.on_events(t, &bytes).expect("events");
        }
    }
    assert_eq!(risk.digest(), live);
    for (a, b) in books.iter().zip(r.books.iter()) {
        assert_eq!(a.digest(), b.digest());
    }
}
