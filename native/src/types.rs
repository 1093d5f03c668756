//! The book's vocabulary: commands in, events out, and their fixed-size little-endian records.
//!
//! This file is the contract between the fast book (`book`), the reference book (`reference`),
//! the Python binding and the daemon. Integers only: prices are ticks (i64), quantities lots (i64),
//! times are the engine's sequencing timestamps (u64 nanoseconds) carried by each command.
//!
//! Wire records (`COMMAND_SIZE`, `EVENT_SIZE` bytes, little endian, no padding surprises) are what
//! crosses the Python/Rust boundary in batches; `Command::decode`/`Event::encode` are the only
//! (de)serializers. Enum fields arrive as raw `u8` so that bad input becomes a reject, not a panic.

/// Order side. Wire value 1 = buy, 2 = sell; anything else is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    Buy = 1,
    Sell = 2,
}

impl Side {
    pub fn from_u8(v: u8) -> Option<Side> {
        match v {
            1 => Some(Side::Buy),
            2 => Some(Side::Sell),
            _ => None,
        }
    }
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// Order type. `price` is the limit (Limit, StopLimit) or the optional protection limit
/// (Market, StopMarket; 0 = unprotected). `stop_price` is the trigger (StopMarket, StopLimit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrdType {
    Limit = 1,
    Market = 2,
    StopMarket = 3,
    StopLimit = 4,
}

impl OrdType {
    pub fn from_u8(v: u8) -> Option<OrdType> {
        match v {
            1 => Some(OrdType::Limit),
            2 => Some(OrdType::Market),
            3 => Some(OrdType::StopMarket),
            4 => Some(OrdType::StopLimit),
            _ => None,
        }
    }
}

/// Time in force. Market orders (and triggered stop-markets) are always immediate: any TIF
/// other than IOC/FOK on a market order is treated as IOC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tif {
    Gtc = 1,
    Day = 2,
    Gtd = 3,
    Ioc = 4,
    Fok = 5,
}

impl Tif {
    pub fn from_u8(v: u8) -> Option<Tif> {
        match v {
            1 => Some(Tif::Gtc),
            2 => Some(Tif::Day),
            3 => Some(Tif::Gtd),
            4 => Some(Tif::Ioc),
            5 => Some(Tif::Fok),
            _ => None,
        }
    }
}

/// Self-trade prevention mode, chosen per incoming order. Two orders self-match when their STP
/// keys are equal: the key is `stp_group` when non-zero, else `account`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StpMode {
    /// Self-trades are allowed.
    None = 0,
    /// Cancel the incoming order's remaining quantity; resting order untouched.
    CancelIncoming = 1,
    /// Cancel the resting order and continue matching.
    CancelResting = 2,
    /// Cancel both the resting order and the incoming remainder.
    CancelBoth = 3,
    /// Decrement both by the smaller quantity (no trade); cancel whichever reaches zero
    /// (both if equal) and continue matching if the incoming order is still open.
    DecrementCancel = 4,
}

impl StpMode {
    pub fn from_u8(v: u8) -> Option<StpMode> {
        match v {
            0 => Some(StpMode::None),
            1 => Some(StpMode::CancelIncoming),
            2 => Some(StpMode::CancelResting),
            3 => Some(StpMode::CancelBoth),
            4 => Some(StpMode::DecrementCancel),
            _ => None,
        }
    }
}

/// Command kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CmdKind {
    New = 1,
    Cancel = 2,
    /// Cancel/replace: `price` (0 = keep) and `qty` = new open (leaves) quantity.
    Amend = 3,
    /// Cancel every resting and stop order of `account`; `side` 0 = both sides.
    MassCancel = 4,
    /// Advance book time to `ts`: GTD orders with `expire_ts <= ts` expire; with flag
    /// `FLAG_END_OF_DAY`, DAY orders expire too.
    AdvanceTime = 5,
    /// A trading control (kill switch, account switch, symbol state, limit change, mass cancel
    /// on behalf of an account), executed by the risk engine at its place in the sequence and
    /// journaled like every command; never routed to a book. Fields: `AdminAction` in
    /// `ord_type`, `LimitKey` in `tif`, `side` (mass cancel), `account` = the account acted
    /// on, `order_id` = the requesting (admin) account, `client_id` = the request id,
    /// `price` = the new limit value (-1 = no limit), `stp_group` = the symbol index (symbol
    /// state, mass cancel; `ALL_SYMBOLS` = every symbol).
    Admin = 6,
}

/// `Command::ord_type` of an `Admin` command. Wire values are the schema's `AdminAction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AdminAction {
    KillSwitchOn = 1,
    KillSwitchOff = 2,
    DisableAccount = 3,
    EnableAccount = 4,
    MassCancel = 5,
    HaltSymbol = 6,
    OpenSymbol = 7,
    CloseSymbol = 8,
    SetLimit = 9,
    ResetLimits = 10,
}

impl AdminAction {
    pub fn from_u8(v: u8) -> Option<AdminAction> {
        use AdminAction::*;
        [
            KillSwitchOn,
            KillSwitchOff,
            DisableAccount,
            EnableAccount,
            MassCancel,
            HaltSymbol,
            OpenSymbol,
            CloseSymbol,
            SetLimit,
            ResetLimits,
        ]
        .into_iter()
        .find(|a| *a as u8 == v)
    }

    /// Whether the action names a symbol (in `stp_group`) rather than an account.
    pub fn on_symbol(self) -> bool {
        matches!(
            self,
            AdminAction::HaltSymbol | AdminAction::OpenSymbol | AdminAction::CloseSymbol
        )
    }
}

/// `Command::tif` of a `SetLimit` admin command: which account limit `price` sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LimitKey {
    MaxOpenOrders = 1,
    MaxOpenBuyNotional = 2,
    MaxOpenSellNotional = 3,
    CreditLimit = 4,
    MaxPosition = 5,
    /// Messages per second of the rate limit (-1: no rate limit).
    RatePerSec = 6,
    /// Burst of the rate limit (needs a rate).
    RateBurst = 7,
}

impl LimitKey {
    pub fn from_u8(v: u8) -> Option<LimitKey> {
        use LimitKey::*;
        [
            MaxOpenOrders,
            MaxOpenBuyNotional,
            MaxOpenSellNotional,
            CreditLimit,
            MaxPosition,
            RatePerSec,
            RateBurst,
        ]
        .into_iter()
        .find(|k| *k as u8 == v)
    }
}

impl CmdKind {
    pub fn from_u8(v: u8) -> Option<CmdKind> {
        match v {
            1 => Some(CmdKind::New),
            2 => Some(CmdKind::Cancel),
            3 => Some(CmdKind::Amend),
            4 => Some(CmdKind::MassCancel),
            5 => Some(CmdKind::AdvanceTime),
            6 => Some(CmdKind::Admin),
            _ => None,
        }
    }
}

/// `Command::flags` bit: the order must not take liquidity; rejected (code 3009) if it would.
pub const FLAG_POST_ONLY: u8 = 1;
/// `Command::flags` bit on AdvanceTime: end of trading day, DAY orders expire.
pub const FLAG_END_OF_DAY: u8 = 2;

/// One sequenced command. Enum-typed fields are raw bytes (see the enums above) so that any
/// byte pattern decodes and invalid values become rejects.
///
/// Field use by kind:
/// - New: side, ord_type, tif, stp, flags, account, client_id, order_id (engine id; 0 = book
///   assigns from its counter), price, stop_price, qty, display_qty (iceberg: 0 = fully
///   visible, else 0 < display_qty < qty), expire_ts (GTD), stp_group.
/// - Cancel: account, order_id (or order_id = 0 and client_id to find by client id).
/// - Amend: account, order_id (or client_id), price (0 = keep), qty (new leaves, > 0).
/// - MassCancel: account, side (0 = both).
/// - AdvanceTime: ts, flags.
/// - Admin: see `CmdKind::Admin`.
///
/// Every kind carries seq and ts (stamped by the sequencer); events echo seq.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Command {
    pub kind: u8,
    pub side: u8,
    pub ord_type: u8,
    pub tif: u8,
    pub stp: u8,
    pub flags: u8,
    pub seq: u64,
    pub ts: u64,
    pub order_id: u64,
    pub account: u64,
    pub client_id: u64,
    pub price: i64,
    pub stop_price: i64,
    pub qty: i64,
    pub display_qty: i64,
    pub expire_ts: u64,
    pub stp_group: u64,
}

/// Size of one command record. Layout (offset: field):
/// 0 kind u8, 1 side u8, 2 ord_type u8, 3 tif u8, 4 stp u8, 5 flags u8, 6..8 reserved (0),
/// 8 seq u64, 16 ts u64, 24 order_id u64, 32 account u64, 40 client_id u64, 48 price i64,
/// 56 stop_price i64, 64 qty i64, 72 display_qty i64, 80 expire_ts u64, 88 stp_group u64.
pub const COMMAND_SIZE: usize = 96;

#[inline]
fn rd_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

#[inline]
fn rd_i64(b: &[u8], off: usize) -> i64 {
    rd_u64(b, off) as i64
}

impl Command {
    /// Decode one record; `None` if `b` is shorter than `COMMAND_SIZE`.
    #[inline]
    pub fn decode(b: &[u8]) -> Option<Command> {
        let rec = b.get(..COMMAND_SIZE)?.try_into().ok()?;
        Some(Command::from_record(rec))
    }

    /// Decode one whole record (no length check; inlined, only the fields read are loaded).
    #[inline(always)]
    pub fn from_record(b: &[u8; COMMAND_SIZE]) -> Command {
        Command {
            kind: b[0],
            side: b[1],
            ord_type: b[2],
            tif: b[3],
            stp: b[4],
            flags: b[5],
            seq: rd_u64(b, 8),
            ts: rd_u64(b, 16),
            order_id: rd_u64(b, 24),
            account: rd_u64(b, 32),
            client_id: rd_u64(b, 40),
            price: rd_i64(b, 48),
            stop_price: rd_i64(b, 56),
            qty: rd_i64(b, 64),
            display_qty: rd_i64(b, 72),
            expire_ts: rd_u64(b, 80),
            stp_group: rd_u64(b, 88),
        }
    }

    /// Append this command's record to `out`.
    #[inline]
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut rec = [0u8; COMMAND_SIZE];
        rec[..6].copy_from_slice(&[
            self.kind,
            self.side,
            self.ord_type,
            self.tif,
            self.stp,
            self.flags,
        ]);
        let words = [
            self.seq,
            self.ts,
            self.order_id,
            self.account,
            self.client_id,
            self.price as u64,
            self.stop_price as u64,
            self.qty as u64,
            self.display_qty as u64,
            self.expire_ts,
            self.stp_group,
        ];
        for (chunk, w) in rec[8..].chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&rec);
    }
}

/// Event kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// New order accepted (before any of its trades). Stops are accepted when they rest.
    Accepted = 1,
    /// Command rejected; `code` and `reject_text(code)` say why. Nothing changed.
    Rejected = 2,
    /// A trade between a resting maker and an incoming taker.
    Trade = 3,
    /// Open quantity removed from an order; `reason` says why.
    Cancelled = 4,
    /// Amend applied.
    Replaced = 5,
    /// A stop order triggered and is entering the book as a market/limit order.
    Triggered = 6,
    /// Price level changed (emitted once per touched level at the end of each command).
    Level = 7,
    /// The outcome of an `Admin` command, for the account that asked (made by the sequencer
    /// or the gateway, never by a book).
    Admin = 8,
}

impl EventKind {
    pub fn from_u8(v: u8) -> Option<EventKind> {
        match v {
            1 => Some(EventKind::Accepted),
            2 => Some(EventKind::Rejected),
            3 => Some(EventKind::Trade),
            4 => Some(EventKind::Cancelled),
            5 => Some(EventKind::Replaced),
            6 => Some(EventKind::Triggered),
            7 => Some(EventKind::Level),
            8 => Some(EventKind::Admin),
            _ => None,
        }
    }
}

/// Why open quantity was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CancelReason {
    User = 1,
    /// IOC (or market) remainder after matching.
    IocRemainder = 2,
    /// FOK could not fill completely; nothing traded.
    FokUnfilled = 3,
    SelfTrade = 4,
    Expired = 5,
    MassCancel = 6,
    /// Market order stopped by its protection limit.
    MarketProtection = 7,
}

/// Numbered reject codes. Ranges per stage: 1xxx gateway, 2xxx risk, 3xxx book.
/// The book owns 3001..=3099.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(u16)]
pub enum BookReject {
    #[error("quantity must be positive and at most the symbol's maximum")]
    InvalidQuantity = 3001,
    #[error("price must be positive and within the symbol's price range")]
    InvalidPrice = 3002,
    #[error("unknown order (never existed, already done, or another account's)")]
    UnknownOrder = 3003,
    #[error("duplicate client order id for this account")]
    DuplicateClientId = 3004,
    #[error("duplicate order id")]
    DuplicateOrderId = 3005,
    #[error("invalid side")]
    InvalidSide = 3006,
    #[error("invalid order type")]
    InvalidOrderType = 3007,
    #[error("invalid time in force")]
    InvalidTif = 3008,
    #[error("post-only order would take liquidity")]
    PostOnlyWouldTake = 3009,
    #[error("invalid display quantity")]
    InvalidDisplayQty = 3010,
    #[error("invalid stop price")]
    InvalidStopPrice = 3011,
    #[error("GTD order needs an expiry after the command time")]
    InvalidExpiry = 3012,
    #[error("amend quantity must be positive and at most the symbol's maximum")]
    InvalidAmendQty = 3013,
    #[error("time in force not allowed for this order type")]
    TifNotAllowed = 3014,
    #[error("unknown command kind")]
    InvalidCommand = 3015,
    #[error("invalid self-trade prevention mode")]
    InvalidStpMode = 3016,
    #[error("post-only not allowed with this order type or time in force")]
    PostOnlyNotAllowed = 3017,
    #[error("amend changes nothing")]
    AmendNoChange = 3018,
    #[error("order account does not match")]
    AccountMismatch = 3019,
    #[error("account must be non-zero")]
    InvalidAccount = 3020,
}

impl BookReject {
    pub fn code(self) -> u16 {
        self as u16
    }
    pub fn from_code(code: u16) -> Option<BookReject> {
        use BookReject::*;
        const ALL: [BookReject; 20] = [
            InvalidQuantity,
            InvalidPrice,
            UnknownOrder,
            DuplicateClientId,
            DuplicateOrderId,
            InvalidSide,
            InvalidOrderType,
            InvalidTif,
            PostOnlyWouldTake,
            InvalidDisplayQty,
            InvalidStopPrice,
            InvalidExpiry,
            InvalidAmendQty,
            TifNotAllowed,
            InvalidCommand,
            InvalidStpMode,
            PostOnlyNotAllowed,
            AmendNoChange,
            AccountMismatch,
            InvalidAccount,
        ];
        ALL.into_iter().find(|r| r.code() == code)
    }
}

/// One event. Field use by kind (unused fields are 0):
/// - Accepted: side, order_id, account, client_id, price (limit, or protection for market
///   orders), qty (order quantity), leaves (= qty), aux (stop price for stops), flags (bit0 =
///   a stop order, set even when it triggers at once).
/// - Rejected: side (raw byte from the command), code, and the command's order_id, account,
///   client_id, price, qty.
/// - Trade: side = maker side; order_id/account/client_id = maker; counter_* = taker; price,
///   qty, leaves = maker open qty after the trade, aux = trade id, aux2 = taker open qty after.
/// - Cancelled: side, reason, order_id, account, client_id, price, qty = quantity cancelled,
///   leaves = open quantity left (0 except for a partial STP decrement).
/// - Replaced: side, order_id, account, client_id, price = new price, qty = new open qty,
///   leaves = new open qty, aux = old price, aux2 = old open qty, flags bit0 = priority kept.
/// - Triggered: side, order_id, account, client_id, price (limit or protection, 0 if none),
///   qty = open qty, aux = stop price, aux2 = last trade price that triggered it.
/// - Level: side, price, qty = total visible quantity (0 = level gone), aux = order count.
/// - Admin: account = the requesting account (the reply goes to it), client_id = request id,
///   code (0 = done), order_id = the account acted on, side, reason = `AdminAction`, flags =
///   `LimitKey`, price = the limit value, aux = the symbol index (u32, `ALL_SYMBOLS` for every
///   symbol), seq = the admin command's seq (0 when refused).
///
/// `seq` is always the sequence number of the command that produced the event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Event {
    pub kind: u8,
    pub side: u8,
    pub reason: u8,
    pub flags: u8,
    pub code: u16,
    pub seq: u64,
    pub order_id: u64,
    pub account: u64,
    pub client_id: u64,
    pub price: i64,
    pub qty: i64,
    pub leaves: i64,
    pub counter_id: u64,
    pub counter_account: u64,
    pub counter_client_id: u64,
    pub aux: i64,
    pub aux2: i64,
}

/// Size of one event record. Layout (offset: field):
/// 0 kind u8, 1 side u8, 2 reason u8, 3 flags u8, 4 code u16, 6..8 reserved (0),
/// 8 seq u64, 16 order_id u64, 24 account u64, 32 client_id u64, 40 price i64, 48 qty i64,
/// 56 leaves i64, 64 counter_id u64, 72 counter_account u64, 80 counter_client_id u64,
/// 88 aux i64, 96 aux2 i64.
pub const EVENT_SIZE: usize = 104;

impl Event {
    /// Append this event's record to `out`.
    #[inline]
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut rec = [0u8; EVENT_SIZE];
        self.write(&mut rec);
        out.extend_from_slice(&rec);
    }

    /// Write this event's record into `rec`.
    #[inline]
    pub fn write(&self, rec: &mut [u8; EVENT_SIZE]) {
        rec[0] = self.kind;
        rec[1] = self.side;
        rec[2] = self.reason;
        rec[3] = self.flags;
        rec[4..6].copy_from_slice(&self.code.to_le_bytes());
        rec[6] = 0;
        rec[7] = 0;
        let words = [
            self.seq,
            self.order_id,
            self.account,
            self.client_id,
            self.price as u64,
            self.qty as u64,
            self.leaves as u64,
            self.counter_id,
            self.counter_account,
            self.counter_client_id,
            self.aux as u64,
            self.aux2 as u64,
        ];
        for (i, w) in words.iter().enumerate() {
            rec[8 + i * 8..16 + i * 8].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Decode one record; `None` if `b` is shorter than `EVENT_SIZE`.
    pub fn decode(b: &[u8]) -> Option<Event> {
        if b.len() < EVENT_SIZE {
            return None;
        }
        Some(Event {
            kind: b[0],
            side: b[1],
            reason: b[2],
            flags: b[3],
            code: u16::from_le_bytes([b[4], b[5]]),
            seq: rd_u64(b, 8),
            order_id: rd_u64(b, 16),
            account: rd_u64(b, 24),
            client_id: rd_u64(b, 32),
            price: rd_i64(b, 40),
            qty: rd_i64(b, 48),
            leaves: rd_i64(b, 56),
            counter_id: rd_u64(b, 64),
            counter_account: rd_u64(b, 72),
            counter_client_id: rd_u64(b, 80),
            aux: rd_i64(b, 88),
            aux2: rd_i64(b, 96),
        })
    }
}

/// Default `BookConfig::max_qty`: 10^12 lots.
pub const DEFAULT_MAX_QTY: i64 = 1_000_000_000_000;

/// Static book parameters for one symbol (from the symbol's config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookConfig {
    /// Lowest accepted limit/stop/protection price in ticks (>= 1).
    pub min_price: i64,
    /// Highest accepted limit/stop/protection price in ticks.
    pub max_price: i64,
    /// Largest order (and amend) quantity in lots. Bounding it keeps every level total, FOK
    /// count and volume far from i64 overflow.
    pub max_qty: i64,
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig {
            min_price: 1,
            max_price: i64::MAX / 4,
            max_qty: DEFAULT_MAX_QTY,
        }
    }
}

/// One aggregated price level (L2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelView {
    pub price: i64,
    /// Sum of visible quantity at this price.
    pub qty: i64,
    pub count: u32,
}

/// One resting or stop order as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub order_id: u64,
    pub account: u64,
    pub client_id: u64,
    pub side: Side,
    pub ord_type: OrdType,
    pub tif: Tif,
    pub price: i64,
    pub stop_price: i64,
    /// Visible (displayed) open quantity.
    pub visible: i64,
    /// Hidden reserve (icebergs); 0 otherwise.
    pub hidden: i64,
    /// Configured display size for icebergs; 0 otherwise.
    pub display_qty: i64,
    /// Quantity filled so far.
    pub filled: i64,
    pub expire_ts: u64,
    /// True while the order waits untriggered in the stop book.
    pub is_stop: bool,
}

/// Running trade statistics since the book was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TradeStats {
    /// Last trade price (0 before the first trade).
    pub last_price: i64,
    /// Total traded quantity.
    pub volume: i64,
    /// Sum of price * qty over all trades (i128: cannot overflow in practice).
    pub notional: i128,
    pub trades: u64,
}

/// What the fast book and the reference book both offer, so one test suite drives both.
pub trait OrderBook {
    /// Apply one command, appending its events to `out`.
    fn apply(&mut self, cmd: &Command, out: &mut Vec<Event>);
    /// Best `n` levels of `side`, best first.
    fn depth(&self, side: Side, n: usize) -> Vec<LevelView>;
    /// Orders resting at `price` on `side`, in queue (priority) order.
    fn level_orders(&self, side: Side, price: i64) -> Vec<OrderView>;
    /// Untriggered stop orders of `side` in trigger order.
    fn stop_orders(&self, side: Side) -> Vec<OrderView>;
    /// Look up a live (resting or stop) order.
    fn order(&self, order_id: u64) -> Option<OrderView>;
    fn stats(&self) -> TradeStats;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_record_round_trips() {
        let c = Command {
            kind: 1,
            side: 2,
            ord_type: 4,
            tif: 3,
            stp: 2,
            flags: 1,
            seq: 7,
            ts: 8,
            order_id: 9,
            account: 10,
            client_id: 11,
            price: -12,
            stop_price: 13,
            qty: 14,
            display_qty: 15,
            expire_ts: 16,
            stp_group: 17,
        };
        let mut buf = Vec::new();
        c.encode(&mut buf);
        assert_eq!(buf.len(), COMMAND_SIZE);
        assert_eq!(Command::decode(&buf), Some(c));
        assert_eq!(Command::decode(&buf[..COMMAND_SIZE - 1]), None);
    }

    #[test]
    fn event_record_round_trips() {
        let e = Event {
            kind: 3,
            side: 1,
            reason: 2,
            flags: 1,
            code: 3004,
            seq: 1,
            order_id: 2,
            account: 3,
            client_id: 4,
            price: -5,
            qty: 6,
            leaves: 7,
            counter_id: 8,
            counter_account: 9,
            counter_client_id: 10,
            aux: 11,
            aux2: -12,
        };
        let mut buf = Vec::new();
        e.encode(&mut buf);
        assert_eq!(buf.len(), EVENT_SIZE);
        assert_eq!(Event::decode(&buf), Some(e));
    }

    #[test]
    fn reject_codes_are_in_the_book_range_and_round_trip() {
        for code in 3001..=3020u16 {
            let r = BookReject::from_code(code).expect("every code in range is defined");
            assert_eq!(r.code(), code);
        }
        assert_eq!(BookReject::from_code(3000), None);
    }
}
