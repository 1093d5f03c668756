//! Deterministic synthetic order flow for benchmarks and tests, in the spirit of exchange-core's
//! `TestOrdersGenerator`.
//!
//! The stream has two parts:
//! 1. **fill**: `depth` resting GTC limit orders, alternating buy/sell, at non-crossing prices
//!    within `band` ticks of `center_price`;
//! 2. **mix**: `commands` commands drawn with the per-mille weights of [`Mix`]: GTC limits,
//!    aggressive IOC limits, cancels, price amends, and market orders with a protection limit.
//!
//! Prices follow the last trade price. The book is kept near `depth` orders by feedback that
//! leaves the mix alone: while it holds fewer, GTC limits and amends stay passive and IOC/market
//! sizes shrink with (live / depth)²; at or above it, GTC limits and amends may cross the center
//! by up to two ticks. The generator runs every command through a [`Book`] so that
//! cancels and amends target live orders (it keeps the ids of the GTC orders it sent and drops the
//! ones the book no longer has when it draws them). A cancel or amend drawn while no live order is
//! found becomes a GTC limit instead. Records carry `seq` 1, 2, 3, … and strictly increasing `ts`;
//! there is no clock and no `rand` crate, so the same config gives the same bytes.

use crate::book::Book;
use crate::types::{
    BookConfig, CmdKind, Command, Event, OrdType, OrderBook, OrderView, Side, StpMode, Tif,
    COMMAND_SIZE,
};

/// Per-mille weights of the command kinds in the mix phase (they need not sum to 1000; each kind
/// is drawn with probability weight / sum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub gtc: u32,
    pub ioc: u32,
    pub cancel: u32,
    pub amend: u32,
    pub market: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            gtc: 90,
            ioc: 30,
            cancel: 60,
            amend: 800,
            market: 20,
        }
    }
}

/// Generator parameters. Prices are ticks, quantities lots, times nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthConfig {
    pub seed: u64,
    /// Number of mix commands after the fill.
    pub commands: usize,
    /// Number of resting orders placed first (the fill).
    pub depth: usize,
    /// Orders come from accounts 1..=accounts.
    pub accounts: u64,
    /// Initial center price; later the last trade price.
    pub center_price: i64,
    /// Resting orders are placed within this many ticks of the center.
    pub band: i64,
    /// Order quantities are drawn from 1..=max_qty.
    pub max_qty: i64,
    /// Market orders carry a protection limit this many ticks through the center.
    pub protection: i64,
    pub mix: Mix,
    /// `ts` of the first record; each following record adds `ts_step`.
    pub start_ts: u64,
    pub ts_step: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 1,
            commands: 100_000,
            depth: 1_000,
            accounts: 100,
            center_price: 100_000,
            band: 100,
            max_qty: 100,
            protection: 50,
            mix: Mix::default(),
            start_ts: 1_000_000_000,
            ts_step: 1_000,
        }
    }
}

/// Why a config cannot produce a flow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    #[error("accounts must be at least 1")]
    NoAccounts,
    #[error("band, max_qty and ts_step must be at least 1 and protection at least 0")]
    NonPositiveParameter,
    #[error("center_price must exceed band + protection + 3 so that every price stays positive")]
    CenterTooLow,
    #[error("center_price + band + protection must stay below the book's max price")]
    CenterTooHigh,
    #[error("the mix weights are all zero")]
    EmptyMix,
    #[error("depth + commands records do not fit in memory")]
    TooLarge,
}

impl SynthConfig {
    pub fn validate(&self) -> Result<(), SynthError> {
        if self.accounts == 0 {
            return Err(SynthError::NoAccounts);
        }
        if self.band < 1 || self.max_qty < 1 || self.protection < 0 || self.ts_step == 0 {
            return Err(SynthError::NonPositiveParameter);
        }
        let reach = self.band.saturating_add(self.protection).saturating_add(3);
        if self.center_price <= reach {
            return Err(SynthError::CenterTooLow);
        }
        if self.center_price.saturating_add(reach) >= BookConfig::default().max_price / 2 {
            return Err(SynthError::CenterTooHigh);
        }
        let m = self.mix;
        let total = u64::from(m.gtc) + u64::from(m.ioc) + u64::from(m.cancel);
        if total + u64::from(m.amend) + u64::from(m.market) == 0 {
            return Err(SynthError::EmptyMix);
        }
        Ok(())
    }
}

/// Generate the flow: `depth + commands` records of `COMMAND_SIZE` bytes.
pub fn synthetic_flow(cfg: &SynthConfig) -> Result<Vec<u8>, SynthError> {
    cfg.validate()?;
    let records = cfg
        .depth
        .checked_add(cfg.commands)
        .ok_or(SynthError::TooLarge)?;
    let bytes = records
        .checked_mul(COMMAND_SIZE)
        .ok_or(SynthError::TooLarge)?;
    let mut out = Vec::new();
    out.try_reserve_exact(bytes)
        .map_err(|_| SynthError::TooLarge)?;
    let mut generator = Generator::new(cfg);
    for i in 0..cfg.depth {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let cmd = generator.resting_limit(side);
        generator.emit(cmd, &mut out);
    }
    for _ in 0..cfg.commands {
        let cmd = generator.next_mix_command();
        generator.emit(cmd, &mut out);
    }
    Ok(out)
}

/// splitmix64: tiny, fast, and good enough for test flow.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n >= 1`; 0 gives 0), by multiply-high.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `0..n` for a positive tick or lot count.
    fn below_i64(&mut self, n: i64) -> i64 {
        self.below(n.max(0) as u64) as i64
    }

    fn side(&mut self) -> Side {
        if self.next() & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Gtc,
    Ioc,
    Cancel,
    Amend,
    Market,
}

struct Generator {
    cfg: SynthConfig,
    rng: SplitMix64,
    book: Book,
    events: Vec<Event>,
    /// Ids of GTC orders sent; some may be done (dropped lazily when drawn).
    live: Vec<u64>,
    next_id: u64,
    seq: u64,
    mix_total: u64,
}

impl Generator {
    fn new(cfg: &SynthConfig) -> Generator {
        let m = cfg.mix;
        Generator {
            cfg: *cfg,
            rng: SplitMix64(cfg.seed),
            book: Book::new(BookConfig::default()),
            events: Vec::new(),
            live: Vec::with_capacity(cfg.depth.saturating_mul(2)),
            next_id: 1,
            seq: 0,
            mix_total: [m.gtc, m.ioc, m.cancel, m.amend, m.market]
                .iter()
                .map(|&w| u64::from(w))
                .sum(),
        }
    }

    /// Stamp seq/ts, run the command through the book, append its record.
    fn emit(&mut self, mut cmd: Command, out: &mut Vec<u8>) {
        self.seq += 1;
        cmd.seq = self.seq;
        cmd.ts = self
            .cfg
            .start_ts
            .wrapping_add(self.seq.wrapping_mul(self.cfg.ts_step));
        self.events.clear();
        self.book.apply(&cmd, &mut self.events);
        cmd.encode(out);
    }

    /// The last trade price, or the configured center before the first trade, kept far enough
    /// from zero that every generated price is positive.
    fn center(&self) -> i64 {
        let last = self.book.stats().last_price;
        let c = if last > 0 {
            last
        } else {
            self.cfg.center_price
        };
        c.max(self.cfg.band + self.cfg.protection + 3)
    }

    fn draw_kind(&mut self) -> Kind {
        let m = self.cfg.mix;
        let mut r = self.rng.below(self.mix_total);
        for (w, k) in [
            (m.gtc, Kind::Gtc),
            (m.ioc, Kind::Ioc),
            (m.cancel, Kind::Cancel),
            (m.amend, Kind::Amend),
        ] {
            if r < u64::from(w) {
                return k;
            }
            r -= u64::from(w);
        }
        Kind::Market
    }

    fn next_mix_command(&mut self) -> Command {
        match self.draw_kind() {
            Kind::Gtc => self.crossing_limit(),
            Kind::Ioc => self.ioc_limit(),
            Kind::Market => self.market(),
            Kind::Cancel => match self.draw_live() {
                Some(o) => Command {
                    kind: CmdKind::Cancel as u8,
                    order_id: o.order_id,
                    account: o.account,
                    ..Command::default()
                },
                None => self.crossing_limit(),
            },
            Kind::Amend => match self.draw_live() {
                Some(o) => self.amend_price(&o),
                None => self.crossing_limit(),
            },
        }
    }

    fn qty(&mut self) -> i64 {
        1 + self.rng.below_i64(self.cfg.max_qty)
    }

    fn account(&mut self) -> u64 {
        1 + self.rng.below(self.cfg.accounts)
    }

    fn new_order(
        &mut self,
        side: Side,
        ord_type: OrdType,
        tif: Tif,
        price: i64,
        qty: i64,
    ) -> Command {
        let order_id = self.next_id;
        self.next_id += 1;
        Command {
            kind: CmdKind::New as u8,
            side: side as u8,
            ord_type: ord_type as u8,
            tif: tif as u8,
            stp: StpMode::None as u8,
            order_id,
            account: self.account(),
            price,
            qty,
            ..Command::default()
        }
    }

    fn below_target(&self) -> bool {
        self.book.order_count() < self.cfg.depth
    }

    /// Distance from the center for a GTC limit or a move: up to two ticks through the center
    /// while the book holds at least `depth` orders, strictly passive while it is thinner.
    fn offset(&mut self) -> i64 {
        if self.below_target() {
            1 + self.rng.below_i64(self.cfg.band)
        } else {
            self.rng.below_i64(self.cfg.band + 2) - 2
        }
    }

    /// Size of an IOC or market order: 1..=max_qty, the range scaled by (live / depth)² while the
    /// book holds fewer than `depth` orders (the feedback that keeps the book near its depth).
    fn aggressive_qty(&mut self) -> i64 {
        let depth = self.cfg.depth.max(1) as i128;
        let live = (self.book.order_count() as i128).min(depth);
        let scaled = i128::from(self.cfg.max_qty) * live / depth * live / depth;
        let cap = scaled.max(1) as i64;
        1 + self.rng.below_i64(cap)
    }

    /// `offset` ticks away from the center on `side`'s passive side (negative: through it).
    fn passive_price(&self, side: Side, offset: i64) -> i64 {
        match side {
            Side::Buy => self.center() - offset,
            Side::Sell => self.center() + offset,
        }
    }

    /// A non-crossing GTC limit (fill phase).
    fn resting_limit(&mut self, side: Side) -> Command {
        let offset = 1 + self.rng.below_i64(self.cfg.band);
        let price = self.passive_price(side, offset);
        self.gtc(side, price)
    }

    /// A GTC limit within the band that may cross the center by up to two ticks.
    fn crossing_limit(&mut self) -> Command {
        let side = self.rng.side();
        let offset = self.offset();
        let price = self.passive_price(side, offset);
        self.gtc(side, price)
    }

    fn gtc(&mut self, side: Side, price: i64) -> Command {
        let qty = self.qty();
        let cmd = self.new_order(side, OrdType::Limit, Tif::Gtc, price, qty);
        self.live.push(cmd.order_id);
        cmd
    }

    /// An IOC limit reaching up to a tenth of the band through the center.
    fn ioc_limit(&mut self) -> Command {
        let side = self.rng.side();
        let through = self.rng.below_i64(self.cfg.band / 10 + 1);
        let price = self.passive_price(side, -through);
        let qty = self.aggressive_qty();
        self.new_order(side, OrdType::Limit, Tif::Ioc, price, qty)
    }

    fn market(&mut self) -> Command {
        let side = self.rng.side();
        let price = self.passive_price(side, -self.cfg.protection);
        let qty = self.aggressive_qty();
        self.new_order(side, OrdType::Market, Tif::Ioc, price, qty)
    }

    /// Move a live order to a fresh price on its side (possibly crossing), same open quantity.
    fn amend_price(&mut self, o: &OrderView) -> Command {
        let offset = self.offset();
        let mut price = self.passive_price(o.side, offset);
        if price == o.price {
            // One tick towards the center instead: a move to the same price is rejected (3018).
            price += match o.side {
                Side::Buy => 1,
                Side::Sell => -1,
            };
        }
        Command {
            kind: CmdKind::Amend as u8,
            order_id: o.order_id,
            account: o.account,
            price,
            qty: o.visible + o.hidden,
            ..Command::default()
        }
    }

    /// A uniformly drawn live resting order, dropping done ids met on the way.
    fn draw_live(&mut self) -> Option<OrderView> {
        for _ in 0..16 {
            if self.live.is_empty() {
                return None;
            }
            let i = self.rng.below(self.live.len() as u64) as usize;
            let id = *self.live.get(i)?;
            match self.book.order(id) {
                Some(o) if !o.is_stop => return Some(o),
                _ => {
                    self.live.swap_remove(i);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(buf: &[u8]) -> Vec<Command> {
        buf.chunks_exact(COMMAND_SIZE)
            .filter_map(Command::decode)
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let cfg = SynthConfig {
            commands: 5_000,
            depth: 200,
            ..SynthConfig::default()
        };
        let a = synthetic_flow(&cfg).unwrap();
        let b = synthetic_flow(&cfg).unwrap();
        let c = synthetic_flow(&SynthConfig { seed: 2, ..cfg }).unwrap();
        assert_eq!(a.len(), 5_200 * COMMAND_SIZE);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn seq_counts_up_and_ts_increases() {
        let cfg = SynthConfig {
            commands: 2_000,
            depth: 100,
            ..SynthConfig::default()
        };
        let cmds = commands(&synthetic_flow(&cfg).unwrap());
        for (i, c) in cmds.iter().enumerate() {
            assert_eq!(c.seq, i as u64 + 1);
        }
        assert!(cmds.windows(2).all(|w| w[0].ts < w[1].ts));
    }

    #[test]
    fn mix_follows_the_weights_and_book_stays_populated() {
        let cfg = SynthConfig {
            commands: 50_000,
            depth: 1_000,
            ..SynthConfig::default()
        };
        let cmds = commands(&synthetic_flow(&cfg).unwrap());
        let mix = &cmds[cfg.depth..];
        let share = |f: &dyn Fn(&Command) -> bool| {
            mix.iter().filter(|c| f(c)).count() as f64 / mix.len() as f64
        };
        let amend = share(&|c| c.kind == CmdKind::Amend as u8);
        let cancel = share(&|c| c.kind == CmdKind::Cancel as u8);
        let market = share(&|c| c.ord_type == OrdType::Market as u8);
        let ioc = share(&|c| c.ord_type == OrdType::Limit as u8 && c.tif == Tif::Ioc as u8);
        assert!((amend - 0.80).abs() < 0.02, "amend {amend}");
        assert!((cancel - 0.06).abs() < 0.01, "cancel {cancel}");
        assert!((market - 0.02).abs() < 0.005, "market {market}");
        assert!((ioc - 0.03).abs() < 0.005, "ioc {ioc}");

        let mut book = Book::new(BookConfig::default());
        let mut ev = Vec::new();
        let mut rejects = 0;
        for c in &cmds {
            ev.clear();
            book.apply(c, &mut ev);
            rejects += ev.iter().filter(|e| e.kind == 2).count();
        }
        assert_eq!(rejects, 0, "the flow is meant to be valid");
        let bid = book.depth(Side::Buy, 1);
        let ask = book.depth(Side::Sell, 1);
        assert!(!bid.is_empty() && !ask.is_empty());
        assert!(bid[0].price < ask[0].price);
        assert!(book.stats().trades > 1_000);
        assert!(
            book.order_count() > cfg.depth / 2,
            "{} live",
            book.order_count()
        );
    }

    #[test]
    fn bad_configs_are_errors() {
        let d = SynthConfig::default();
        assert_eq!(
            synthetic_flow(&SynthConfig { accounts: 0, ..d }),
            Err(SynthError::NoAccounts)
        );
        assert_eq!(
            synthetic_flow(&SynthConfig {
                center_price: 10,
                ..d
            }),
            Err(SynthError::CenterTooLow)
        );
        let zero = Mix {
            gtc: 0,
            ioc: 0,
            cancel: 0,
            amend: 0,
            market: 0,
        };
        assert_eq!(
            synthetic_flow(&SynthConfig { mix: zero, ..d }),
            Err(SynthError::EmptyMix)
        );
        assert_eq!(
            synthetic_flow(&SynthConfig {
                commands: usize::MAX,
                ..d
            }),
            Err(SynthError::TooLarge)
        );
    }
}
