//! Risk reject codes: the 2xxx range of the reject-code space (1xxx gateway, 2xxx risk,
//! 3xxx book). Numbers and texts are stable: they go on the wire and into metrics.

/// Why the risk engine refused a command. `code()` is the number on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(u16)]
pub enum RiskReject {
    #[error("unknown symbol")]
    UnknownSymbol = 2001,
    #[error("symbol is closed")]
    SymbolClosed = 2002,
    #[error("symbol is halted")]
    SymbolHalted = 2003,
    #[error("account is disabled")]
    AccountDisabled = 2004,
    #[error("account kill switch is on")]
    KillSwitch = 2005,
    #[error("price is not a multiple of the symbol's tick")]
    TickMultiple = 2006,
    #[error("quantity is not a multiple of the symbol's lot")]
    LotMultiple = 2007,
    #[error("quantity below the symbol's minimum")]
    QtyBelowMin = 2008,
    #[error("quantity above the symbol's maximum")]
    QtyAboveMax = 2009,
    #[error("market order without protection price and no reference price")]
    NoReferencePrice = 2010,
    #[error("order notional above the symbol's maximum")]
    NotionalAboveMax = 2011,
    #[error("limit price outside the price band")]
    PriceBand = 2012,
    #[error("market protection price outside the market price band")]
    MarketPriceBand = 2013,
    #[error("order rate limit exceeded")]
    RateLimit = 2014,
    #[error("too many open orders for this account")]
    MaxOpenOrders = 2015,
    #[error("open buy notional limit exceeded")]
    OpenBuyNotional = 2016,
    #[error("open sell notional limit exceeded")]
    OpenSellNotional = 2017,
    #[error("position limit exceeded")]
    PositionLimit = 2018,
    #[error("credit limit exceeded")]
    CreditLimit = 2019,
    #[error("duplicate client order id for this account today")]
    DuplicateClientId = 2020,
    #[error("amend target not acknowledged yet")]
    AmendUnacknowledged = 2021,
    #[error("order id in use")]
    OrderIdInUse = 2022,
    #[error("trading controls need the risk engine ([risk] enabled)")]
    ControlsNeedRisk = 2023,
    #[error("invalid admin request")]
    BadAdmin = 2024,
    #[error("invalid limit value")]
    BadLimitValue = 2025,
}

impl RiskReject {
    /// Every reject, in code order.
    pub const ALL: [RiskReject; 25] = [
        RiskReject::UnknownSymbol,
        RiskReject::SymbolClosed,
        RiskReject::SymbolHalted,
        RiskReject::AccountDisabled,
        RiskReject::KillSwitch,
        RiskReject::TickMultiple,
        RiskReject::LotMultiple,
        RiskReject::QtyBelowMin,
        RiskReject::QtyAboveMax,
        RiskReject::NoReferencePrice,
        RiskReject::NotionalAboveMax,
        RiskReject::PriceBand,
        RiskReject::MarketPriceBand,
        RiskReject::RateLimit,
        RiskReject::MaxOpenOrders,
        RiskReject::OpenBuyNotional,
        RiskReject::OpenSellNotional,
        RiskReject::PositionLimit,
        RiskReject::CreditLimit,
        RiskReject::DuplicateClientId,
        RiskReject::AmendUnacknowledged,
        RiskReject::OrderIdInUse,
        RiskReject::ControlsNeedRisk,
        RiskReject::BadAdmin,
        RiskReject::BadLimitValue,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<RiskReject> {
        RiskReject::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// The text of a risk reject code, `None` outside the defined codes.
pub fn risk_reject_text(code: u16) -> Option<String> {
    RiskReject::from_code(code).map(|r| r.to_string())
}
