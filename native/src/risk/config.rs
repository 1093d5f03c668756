//! Risk configuration: per-symbol static checks (`SymbolRisk`) and per-account limits
//! (`AccountLimits`). Plain data, validated by the engine when it is built or changed; field
//! names are the config keys listed in `docs/risk.md`.

/// Symbol trading state. Wire value 1 = open, 2 = halted, 3 = closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TradingState {
    /// Orders, amends and cancels accepted.
    #[default]
    Open = 1,
    /// No new orders or amends (so no matching); cancels and mass cancels accepted.
    Halted = 2,
    /// Every order command refused.
    Closed = 3,
}

impl TradingState {
    pub fn from_u8(v: u8) -> Option<TradingState> {
        match v {
            1 => Some(TradingState::Open),
            2 => Some(TradingState::Halted),
            3 => Some(TradingState::Closed),
            _ => None,
        }
    }
}

/// A price band (collar) around a reference price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Band {
    /// No band.
    #[default]
    Off,
    /// `|price - reference| <= n` ticks.
    Ticks(i64),
    /// `|price - reference| <= reference * bps / 10_000` (1 bp = 0.01 %), compared exactly.
    Bps(i64),
}

impl Band {
    /// Whether `price` is inside the band around `reference`.
    #[inline]
    pub fn contains(self, reference: i64, price: i64) -> bool {
        let d = (i128::from(price) - i128::from(reference)).abs();
        match self {
            Band::Off => true,
            Band::Ticks(n) => d <= i128::from(n),
            Band::Bps(bps) => d * 10_000 <= i128::from(reference) * i128::from(bps),
        }
    }

    /// Half-width of the band around `reference` in whole ticks (rounded down); 0 when off.
    pub fn width(self, reference: i64) -> i64 {
        match self {
            Band::Off => 0,
            Band::Ticks(n) => n,
            Band::Bps(bps) => {
                let w = i128::from(reference) * i128::from(bps) / 10_000;
                i64::try_from(w).unwrap_or(i64::MAX)
            }
        }
    }

    fn valid(self) -> bool {
        match self {
            Band::Off => true,
            Band::Ticks(n) | Band::Bps(n) => n >= 0,
        }
    }
}

/// Per-symbol static checks. Prices are ticks, quantities lots, notionals ticks x lots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymbolRisk {
    pub symbol: u32,
    /// Prices (limit, stop, protection) must be multiples of this many ticks (>= 1).
    pub tick: i64,
    /// Quantities (order, display, amend) must be multiples of this many lots (>= 1).
    pub lot: i64,
    /// Smallest order quantity of a new order (>= 1).
    pub min_qty: i64,
    /// Largest order quantity of a new order or an amend (>= min_qty).
    pub max_qty: i64,
    /// Largest order notional, price x quantity (>= 0).
    pub max_notional: i128,
    /// Collar reference before the first trade (0 = none: no collar until a trade).
    pub reference_price: i64,
    /// Band for limit prices (limit and stop-limit orders).
    pub band: Band,
    /// Band for the protection price of market and stop-market orders.
    pub market_band: Band,
    pub state: TradingState,
}

impl SymbolRisk {
    /// A symbol with every check off: tick and lot 1, quantities 1.., no bands, open.
    pub fn new(symbol: u32) -> SymbolRisk {
        SymbolRisk {
            symbol,
            tick: 1,
            lot: 1,
            min_qty: 1,
            max_qty: i64::MAX,
            max_notional: i128::MAX,
            reference_price: 0,
            band: Band::Off,
            market_band: Band::Off,
            state: TradingState::Open,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), RiskError> {
        let bad = |what| Err(RiskError::BadSymbol(self.symbol, what));
        if self.tick < 1 {
            return bad("tick must be >= 1");
        }
        if self.lot < 1 {
            return bad("lot must be >= 1");
        }
        if self.min_qty < 1 || self.max_qty < self.min_qty {
            return bad("need 1 <= min_qty <= max_qty");
        }
        if self.max_notional < 0 {
            return bad("max_notional must be >= 0");
        }
        if self.reference_price < 0 {
            return bad("reference_price must be >= 0");
        }
        if !self.band.valid() || !self.market_band.valid() {
            return bad("bands must be >= 0");
        }
        Ok(())
    }
}

/// Order-rate limit: a token bucket of `burst` messages refilled at `per_sec` messages per
/// second of sequenced time (the commands' `ts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub per_sec: u64,
    pub burst: u64,
}

/// Per-account limits. `AccountLimits::default()` is unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountLimits {
    /// Largest number of live orders (resting, stop, or in flight to the book).
    pub max_open_orders: u32,
    /// Largest total notional of live buy orders.
    pub max_open_buy_notional: i128,
    /// Largest total notional of live sell orders.
    pub max_open_sell_notional: i128,
    /// Largest exposure: positions at cost plus live orders of both sides.
    pub credit_limit: i128,
    /// Largest absolute net position per symbol, counting live orders (worst case).
    pub max_position: i64,
    /// Order-rate limit on new orders and amends; `None` = no limit.
    pub rate: Option<RateLimit>,
}

impl AccountLimits {
    pub const UNLIMITED: AccountLimits = AccountLimits {
        max_open_orders: u32::MAX,
        max_open_buy_notional: i128::MAX,
        max_open_sell_notional: i128::MAX,
        credit_limit: i128::MAX,
        max_position: i64::MAX,
        rate: None,
    };

    pub(crate) fn validate(&self) -> Result<(), RiskError> {
        let bad = |what| Err(RiskError::BadLimits(what));
        if self.max_open_buy_notional < 0 || self.max_open_sell_notional < 0 {
            return bad("open notional limits must be >= 0");
        }
        if self.credit_limit < 0 {
            return bad("credit_limit must be >= 0");
        }
        if self.max_position < 0 {
            return bad("max_position must be >= 0");
        }
        if let Some(r) = self.rate {
            if r.per_sec < 1 || r.burst < 1 {
                return bad("rate limit needs per_sec >= 1 and burst >= 1");
            }
        }
        Ok(())
    }
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits::UNLIMITED
    }
}

/// Errors of the risk engine's API (configuration, admin calls, buffers, snapshots). A risk
/// reject of a command is not an error: it is a `RiskReject`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    #[error("symbol {0}: {1}")]
    BadSymbol(u32, &'static str),
    #[error("symbol {0} configured twice")]
    DuplicateSymbol(u32),
    #[error("unknown symbol {0}")]
    UnknownSymbol(u32),
    #[error("account limits: {0}")]
    BadLimits(&'static str),
    #[error("account must be non-zero")]
    ZeroAccount,
    #[error("{what} buffer of {len} bytes is not a whole number of {size}-byte records")]
    BadBuffer {
        what: &'static str,
        len: usize,
        size: usize,
    },
    #[error("{symbols} symbols given for {commands} commands")]
    BatchMismatch { symbols: usize, commands: usize },
    #[error(transparent)]
    Snapshot(#[from] super::snapshot::SnapshotError),
}
