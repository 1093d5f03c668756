//! The risk actor's per-batch work in one call: basic pre-trade checks, sequencing and routing.
//!
//! For each command record of a batch (with its symbol index): check it against its symbol's
//! rules (risk codes 2xxx); a refused command becomes a `Rejected` event (seq 0, not journaled);
//! an accepted one gets the next global sequence number and the batch timestamp (the engine clock
//! read once per batch, never going backwards), a new order gets its engine order id (= its seq),
//! and the record goes to the journal batch and to its symbol's book batch (`ALL_SYMBOLS`: to
//! every book).
//!
//! Check order for a new order: known symbol (2001), maximum quantity (2009), lot multiple of
//! the quantity and display quantity (2007), then each price field: tick multiple (2006), then
//! inside the symbol's `[min_price, max_price]` and, when configured, inside the band around
//! the reference price (limit and stop prices 2012, a market order's protection price 2013). A
//! limit or stop-limit price of 0 is outside (2012); a market protection price of 0 means none.
//! Amends are checked the same way for a non-zero price and the new quantity; cancels and mass
//! cancels only for the symbol. Anything the book checks itself (side, order type, TIF,
//! positive quantity, ...) is left to the book (3xxx).

use super::codes::RiskCode;
use super::decode::{admin_event, reject_event};
use super::{ADMIN_SYMBOL, ALL_SYMBOLS, JOURNAL_ENTRY_SIZE, NO_SYMBOL};
use crate::types::{AdminAction, CmdKind, Command, OrdType, COMMAND_SIZE};

/// A symbol's static risk rules (from the symbol's config). Prices in price units, quantities
/// in quantity units; `tick_size` and `lot_size` >= 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolRules {
    pub tick_size: i64,
    pub lot_size: i64,
    pub min_price: i64,
    pub max_price: i64,
    /// Reference price for the band check (0 = no band check).
    pub reference_price: i64,
    /// Allowed deviation from the reference price in basis points (0 = no band check).
    pub band_bps: i64,
    pub max_order_qty: i64,
}

/// Misuse of the sequencer by its caller (never caused by client input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("command buffer of {0} bytes is not a whole number of records")]
    PartialRecord(usize),
    #[error("{commands} commands but {symbols} symbol indexes")]
    SymbolCount { commands: usize, symbols: usize },
    #[error("rules must have tick_size >= 1 and lot_size >= 1 (symbol {0})")]
    BadRules(usize),
}

/// One batch's results. Reused between calls (`clear`).
#[derive(Debug, Default)]
pub struct Sequenced {
    /// Accepted commands in sequence order, `JOURNAL_ENTRY_SIZE` bytes each: the command record
    /// followed by the symbol index (u32) and 4 reserved zero bytes.
    pub journal: Vec<u8>,
    /// Command records per symbol index, for the book actors.
    pub per_symbol: Vec<Vec<u8>>,
    /// `Rejected` event records (risk codes) and one u32 symbol index per reject.
    pub rejects: Vec<u8>,
    pub reject_symbols: Vec<u8>,
    /// First and last sequence number given in this batch (0, 0 when none).
    pub first_seq: u64,
    pub last_seq: u64,
}

impl Sequenced {
    pub fn clear(&mut self) {
        self.journal.clear();
        self.per_symbol.iter_mut().for_each(Vec::clear);
        self.rejects.clear();
        self.reject_symbols.clear();
        self.first_seq = 0;
        self.last_seq = 0;
    }
}

/// Cumulative counters, read by the metrics collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequencerStats {
    pub sequenced: u64,
    pub batches: u64,
    /// Rejects by risk code (index = code - 2001), the sequencer's and the risk engine's.
    pub rejects_by_code: [u64; 32],
}

impl SequencerStats {
    /// `(code, count)` for every risk code counted at least once, in code order.
    pub fn rejects(&self) -> Vec<(u16, u64)> {
        (2001u16..)
            .zip(self.rejects_by_code.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| (c, *n))
            .collect()
    }
}

#[derive(Debug)]
pub struct Sequencer {
    rules: Vec<SymbolRules>,
    next_seq: u64,
    last_ts: u64,
    stats: SequencerStats,
}

impl Sequencer {
    /// `next_seq`: the first sequence number to give (>= 1).
    pub fn new(rules: Vec<SymbolRules>, next_seq: u64) -> Result<Sequencer, SequenceError> {
        if let Some(i) = rules.iter().position(|r| r.tick_size < 1 || r.lot_size < 1) {
            return Err(SequenceError::BadRules(i));
        }
        Ok(Sequencer {
            rules,
            next_seq: next_seq.max(1),
            last_ts: 0,
            stats: SequencerStats::default(),
        })
    }

    pub fn stats(&self) -> SequencerStats {
        self.stats
    }

    /// Continue engine time from `last_ts` (the newest stamp before a restart): stamps never go
    /// back, even when the wall clock does across the restart.
    pub fn resume_time(&mut self, last_ts: u64) {
        self.last_ts = self.last_ts.max(last_ts);
    }

    /// The newest stamp given (0 before the first batch, unless resumed).
    pub fn last_ts(&self) -> u64 {
        self.last_ts
    }

    /// The next sequence number to be given.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn symbol_count(&self) -> usize {
        self.rules.len()
    }

    /// Check, stamp and route one batch. `now_ts`: the engine clock (ns), read once per batch.
    pub fn sequence(
        &mut self,
        commands: &[u8],
        symbols: &[u8],
        now_ts: u64,
        out: &mut Sequenced,
    ) -> Result<(), SequenceError> {
        // Without a risk engine, the only trading control that can work is a mass cancel.
        self.sequence_with(commands, symbols, now_ts, out, |_, cmd| {
            let mass_cancel = cmd.ord_type == AdminAction::MassCancel as u8;
            if cmd.kind == CmdKind::Admin as u8 && !mass_cancel {
                Err(RiskCode::ControlsNeedRisk.code())
            } else {
                Ok(())
            }
        })
    }

    /// `sequence` with a further pre-trade check (the risk engine, `crate::risk`): a command
    /// that passes the basic checks is stamped with the sequence number, timestamp and order id
    /// it would get and handed to `check(symbol, &stamped)`; `Err(code)` refuses it (a
    /// `Rejected` event with that code, no sequence number taken), `Ok` sequences it. So the
    /// checker sees every command with the `seq` and `ts` it is journaled with, and refused
    /// commands leave no gap. Not handed to `check`: a mass cancel for `ALL_SYMBOLS`, and a new
    /// order with a quantity <= 0 (the book rejects it, 3001).
    pub fn sequence_with<F>(
        &mut self,
        commands: &[u8],
        symbols: &[u8],
        now_ts: u64,
        out: &mut Sequenced,
        mut check: F,
    ) -> Result<(), SequenceError>
    where
        F: FnMut(u32, &Command) -> Result<(), u16>,
    {
        if !commands.len().is_multiple_of(COMMAND_SIZE) {
            return Err(SequenceError::PartialRecord(commands.len()));
        }
        let n = commands.len() / COMMAND_SIZE;
        if symbols.len() != n * 4 {
            return Err(SequenceError::SymbolCount {
                commands: n,
                symbols: symbols.len() / 4,
            });
        }
        out.clear();
        out.per_symbol.resize_with(self.rules.len(), Vec::new);
        let ts = now_ts.max(self.last_ts);
        self.last_ts = ts;
        self.stats.batches += 1;
        for (rec, sym) in commands
            .chunks_exact(COMMAND_SIZE)
            .zip(symbols.chunks_exact(4))
        {
            let Some(mut cmd) = Command::decode(rec) else {
                continue;
            };
            let symbol = u32::from_le_bytes([sym[0], sym[1], sym[2], sym[3]]);
            if cmd.kind == CmdKind::Admin as u8 {
                self.admin(cmd, ts, out, &mut check);
                continue;
            }
            let received = cmd;
            let seq = self.next_seq;
            cmd.seq = seq;
            cmd.ts = ts;
            if cmd.kind == CmdKind::New as u8 {
                cmd.order_id = seq;
            }
            let all_cancel = symbol == ALL_SYMBOLS && cmd.kind == CmdKind::MassCancel as u8;
            // A new order without a positive quantity is malformed for the book: left to it
            // (3001), as before the risk engine, not refused as "below the minimum" (2008).
            let for_book = cmd.kind == CmdKind::New as u8 && cmd.qty <= 0;
            let verdict = match self.check(&received, symbol) {
                Err(code) => Err(code.code()),
                Ok(()) if all_cancel || for_book => Ok(()),
                Ok(()) => check(symbol, &cmd),
            };
            if let Err(code) = verdict {
                self.count_reject(code);
                reject_event(code, &received).encode(&mut out.rejects);
                out.reject_symbols.extend_from_slice(&symbol.to_le_bytes());
                continue;
            }
            self.accept(&cmd, symbol, out);
        }
        Ok(())
    }

    /// Take the next sequence number for `cmd` (stamped with it already): journal it and route
    /// it to its book (`ALL_SYMBOLS`: every book; `ADMIN_SYMBOL`: none).
    fn accept(&mut self, cmd: &Command, symbol: u32, out: &mut Sequenced) {
        let seq = cmd.seq;
        self.next_seq += 1;
        if out.first_seq == 0 {
            out.first_seq = seq;
        }
        out.last_seq = seq;
        self.stats.sequenced += 1;
        let start = out.journal.len();
        cmd.encode(&mut out.journal);
        out.journal.extend_from_slice(&symbol.to_le_bytes());
        out.journal.extend_from_slice(&[0u8; 4]);
        let record = out
            .journal
            .get(start..start + COMMAND_SIZE)
            .unwrap_or_default();
        if symbol == ALL_SYMBOLS {
            for book in out.per_symbol.iter_mut() {
                book.extend_from_slice(record);
            }
        } else if let Some(book) = out.per_symbol.get_mut(symbol as usize) {
            book.extend_from_slice(record);
        }
        debug_assert_eq!(out.journal.len() - start, JOURNAL_ENTRY_SIZE);
    }

    fn count_reject(&mut self, code: u16) {
        let i = usize::from(code.saturating_sub(2001));
        if let Some(c) = self.stats.rejects_by_code.get_mut(i) {
            *c += 1;
        }
    }

    /// An `Admin` command: `check` executes it (the risk engine) or refuses it. Done, it is
    /// journaled under `ADMIN_SYMBOL` (no book sees it) and answered with an `Admin` event for
    /// the requesting account; a mass cancel (and a kill switch turned on: a mass cancel of
    /// every symbol) is then sequenced as a `MassCancel` of the account it acts on, checked
    /// like any other (a closed symbol's orders stay). Refused: an `Admin` event with the code,
    /// no sequence number.
    fn admin<F>(&mut self, received: Command, ts: u64, out: &mut Sequenced, check: &mut F)
    where
        F: FnMut(u32, &Command) -> Result<(), u16>,
    {
        let action = AdminAction::from_u8(received.ord_type);
        let target = u32::try_from(received.stp_group).unwrap_or(NO_SYMBOL);
        let symbol_ok = target == ALL_SYMBOLS || (target as usize) < self.rules.len();
        let cmd = Command {
            seq: self.next_seq,
            ts,
            ..received
        };
        let verdict = match action {
            Some(a) if (a.on_symbol() || a == AdminAction::MassCancel) && !symbol_ok => {
                Err(RiskCode::UnknownSymbol.code())
            }
            Some(a) if a.on_symbol() && target == ALL_SYMBOLS => {
                Err(RiskCode::UnknownSymbol.code())
            }
            Some(_) => check(ADMIN_SYMBOL, &cmd),
            None => Err(RiskCode::BadAdmin.code()),
        };
        let reply_symbol = if (target as usize) < self.rules.len() {
            target
        } else {
            NO_SYMBOL
        };
        if let Err(code) = verdict {
            self.count_reject(code);
            admin_event(code, &received).encode(&mut out.rejects);
            out.reject_symbols
                .extend_from_slice(&reply_symbol.to_le_bytes());
            return;
        }
        self.accept(&cmd, ADMIN_SYMBOL, out);
        admin_event(0u16, &cmd).encode(&mut out.rejects);
        out.reject_symbols
            .extend_from_slice(&reply_symbol.to_le_bytes());
        let (side, symbol) = match action {
            Some(AdminAction::KillSwitchOn) => (0, ALL_SYMBOLS),
            Some(AdminAction::MassCancel) => (cmd.side, target),
            _ => return,
        };
        let cancel = Command {
            kind: CmdKind::MassCancel as u8,
            side,
            seq: self.next_seq,
            ts,
            account: cmd.account,
            ..Command::default()
        };
        if symbol == ALL_SYMBOLS || check(symbol, &cancel).is_ok() {
            self.accept(&cancel, symbol, out);
        }
    }

    fn check(&self, cmd: &Command, symbol: u32) -> Result<(), RiskCode> {
        let kind = CmdKind::from_u8(cmd.kind);
        let all_allowed = matches!(kind, Some(CmdKind::MassCancel) | Some(CmdKind::AdvanceTime));
        if symbol == ALL_SYMBOLS && all_allowed {
            return Ok(());
        }
        let rules = self
            .rules
            .get(symbol as usize)
            .ok_or(RiskCode::UnknownSymbol)?;
        match kind {
            Some(CmdKind::New) => {
                rules.check_qty(cmd.qty)?;
                if cmd.display_qty != 0 && !multiple(cmd.display_qty, rules.lot_size) {
                    return Err(RiskCode::LotMultiple);
                }
                match OrdType::from_u8(cmd.ord_type) {
                    Some(OrdType::Limit) | Some(OrdType::StopLimit) => {
                        rules.check_price(cmd.price, RiskCode::PriceBand)?
                    }
                    Some(OrdType::Market) | Some(OrdType::StopMarket) if cmd.price != 0 => {
                        rules.check_price(cmd.price, RiskCode::MarketPriceBand)?
                    }
                    _ => {}
                }
                if cmd.stop_price != 0 {
                    rules.check_price(cmd.stop_price, RiskCode::PriceBand)?;
                }
                Ok(())
            }
            Some(CmdKind::Amend) => {
                rules.check_qty(cmd.qty)?;
                if cmd.price != 0 {
                    rules.check_price(cmd.price, RiskCode::PriceBand)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// `v` is a multiple of `m` (>= 1); no division for the usual `m == 1` (a 64-bit division
/// costs tens of cycles, twice per order).
#[inline]
fn multiple(v: i64, m: i64) -> bool {
    m <= 1 || v % m == 0
}

impl SymbolRules {
    fn check_qty(&self, qty: i64) -> Result<(), RiskCode> {
        if qty > self.max_order_qty {
            return Err(RiskCode::QtyAboveMax);
        }
        if !multiple(qty, self.lot_size) {
            return Err(RiskCode::LotMultiple);
        }
        Ok(())
    }

    /// Tick multiple, then `[min_price, max_price]` and the band; `outside` is the code for
    /// a price outside.
    fn check_price(&self, price: i64, outside: RiskCode) -> Result<(), RiskCode> {
        if !multiple(price, self.tick_size) {
            return Err(RiskCode::TickMultiple);
        }
        if price < self.min_price || price > self.max_price {
            return Err(outside);
        }
        if self.band_bps > 0 && self.reference_price > 0 {
            let deviation = (i128::from(price) - i128::from(self.reference_price)).abs() * 10_000;
            if deviation > i128::from(self.reference_price) * i128::from(self.band_bps) {
                return Err(outside);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Event, EventKind, EVENT_SIZE};
    use crate::wire::NO_SYMBOL;

    fn rules() -> SymbolRules {
        SymbolRules {
            tick_size: 5,
            lot_size: 10,
            min_price: 100,
            max_price: 10_000,
            reference_price: 1_000,
            band_bps: 1_000,
            max_order_qty: 1_000,
        }
    }

    fn new_limit(price: i64, qty: i64) -> Command {
        Command {
            kind: CmdKind::New as u8,
            side: 1,
            ord_type: OrdType::Limit as u8,
            tif: 1,
            account: 7,
            client_id: 1,
            price,
            qty,
            ..Command::default()
        }
    }

    fn run(seq: &mut Sequencer, cmds: &[(Command, u32)], now: u64) -> Sequenced {
        let mut recs = Vec::new();
        let mut syms = Vec::new();
        for (c, s) in cmds {
            c.encode(&mut recs);
            syms.extend_from_slice(&s.to_le_bytes());
        }
        let mut out = Sequenced::default();
        seq.sequence(&recs, &syms, now, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    fn reject_codes(out: &Sequenced) -> Vec<u16> {
        out.rejects
            .chunks_exact(EVENT_SIZE)
            .filter_map(Event::decode)
            .inspect(|e| assert_eq!(e.kind, EventKind::Rejected as u8))
            .map(|e| e.code)
            .collect()
    }

    #[test]
    fn accepted_commands_get_consecutive_seqs_one_ts_and_order_ids() {
        let mut s = Sequencer::new(vec![rules(), rules()], 41).unwrap_or_else(|e| panic!("{e}"));
        let out = run(
            &mut s,
            &[(new_limit(1_000, 10), 0), (new_limit(1_005, 20), 1)],
            99,
        );
        assert_eq!((out.first_seq, out.last_seq), (41, 42));
        let j: Vec<Command> = out
            .journal
            .chunks_exact(JOURNAL_ENTRY_SIZE)
            .filter_map(Command::decode)
            .collect();
        assert_eq!(
            j.iter()
                .map(|c| (c.seq, c.ts, c.order_id))
                .collect::<Vec<_>>(),
            vec![(41, 99, 41), (42, 99, 42)]
        );
        assert_eq!(out.per_symbol[0].len(), COMMAND_SIZE);
        assert_eq!(out.per_symbol[1].len(), COMMAND_SIZE);
        // The clock never goes backwards.
        let out = run(&mut s, &[(new_limit(1_000, 10), 0)], 50);
        let c = Command::decode(&out.journal).unwrap_or_default();
        assert_eq!((c.seq, c.ts), (43, 99));
    }

    #[test]
    fn basic_checks_reject_with_risk_codes_and_consume_no_seq() {
        let mut s = Sequencer::new(vec![rules()], 1).unwrap_or_else(|e| panic!("{e}"));
        let out = run(
            &mut s,
            &[
                (new_limit(1_000, 10), NO_SYMBOL),
                (new_limit(1_001, 10), 0),
                (new_limit(1_000, 15), 0),
                (new_limit(50, 10), 0),
                (new_limit(2_000, 10), 0),
                (new_limit(1_000, 2_000), 0),
                (new_limit(0, 10), 0),
                (new_limit(1_000, 10), 0),
            ],
            1,
        );
        assert_eq!(
            reject_codes(&out),
            vec![2001, 2006, 2007, 2012, 2012, 2009, 2012]
        );
        assert_eq!((out.first_seq, out.last_seq), (1, 1));
        let market = Command {
            ord_type: OrdType::Market as u8,
            tif: 4,
            ..new_limit(50, 10)
        };
        let out = run(
            &mut s,
            &[(market, 0), (Command { price: 0, ..market }, 0)],
            1,
        );
        assert_eq!(reject_codes(&out), vec![2013]);
        let counts = s.stats().rejects();
        assert_eq!(
            counts,
            vec![
                (2001, 1),
                (2006, 1),
                (2007, 1),
                (2009, 1),
                (2012, 3),
                (2013, 1)
            ]
        );
    }

    #[test]
    fn a_further_check_sees_stamped_commands_and_refusals_take_no_seq() {
        let mut seq = Sequencer::new(vec![rules()], 10).unwrap_or_else(|e| panic!("{e}"));
        let mut recs = Vec::new();
        for qty in [10, 20, 30] {
            new_limit(1_000, qty).encode(&mut recs);
        }
        let syms: Vec<u8> = [0u32; 3].iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut seen = Vec::new();
        let mut out = Sequenced::default();
        seq.sequence_with(&recs, &syms, 77, &mut out, |sym, cmd| {
            seen.push((sym, cmd.seq, cmd.ts, cmd.order_id));
            if cmd.qty == 20 {
                Err(2015)
            } else {
                Ok(())
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        // The refused command saw seq 11 but did not take it: the next one gets 11 too.
        assert_eq!(
            seen,
            vec![(0, 10, 77, 10), (0, 11, 77, 11), (0, 11, 77, 11)]
        );
        assert_eq!((out.first_seq, out.last_seq), (10, 11));
        assert_eq!(reject_codes(&out), vec![2015]);
        let rejected = Event::decode(&out.rejects).unwrap_or_else(|| panic!("no reject"));
        assert_eq!((rejected.order_id, rejected.qty), (0, 20));
        assert_eq!(seq.stats().rejects(), vec![(2015, 1)]);
    }

    #[test]
    fn mass_cancel_of_all_symbols_goes_to_every_book() {
        let mut s =
            Sequencer::new(vec![rules(), rules(), rules()], 1).unwrap_or_else(|e| panic!("{e}"));
        let mc = Command {
            kind: CmdKind::MassCancel as u8,
            account: 7,
            ..Command::default()
        };
        let out = run(&mut s, &[(mc, ALL_SYMBOLS)], 1);
        assert!(out.per_symbol.iter().all(|b| b.len() == COMMAND_SIZE));
        assert_eq!(out.journal.len(), JOURNAL_ENTRY_SIZE);
        // A new order for "all symbols" is an unknown symbol.
        let out = run(&mut s, &[(new_limit(1_000, 10), ALL_SYMBOLS)], 1);
        assert_eq!(reject_codes(&out), vec![2001]);
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut s = Sequencer::new(vec![rules()], 1).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Sequenced::default();
        assert_eq!(
            s.sequence(&[0u8; 95], &[], 1, &mut out),
            Err(SequenceError::PartialRecord(95))
        );
        assert!(s.sequence(&[0u8; 96], &[], 1, &mut out).is_err());
        assert!(Sequencer::new(
            vec![SymbolRules {
                tick_size: 0,
                ..rules()
            }],
            1
        )
        .is_err());
    }
}
