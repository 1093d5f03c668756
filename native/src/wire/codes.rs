//! Reject and disconnect codes of the gateway (1xxx) and risk (2xxx) stages. The book owns 3xxx
//! (`types::BookReject`). Codes are data: they travel in `Reject.code` / `Logout.code` and are
//! counted by code in the metrics. `engine/codes.py` mirrors this table for Python (a test pins
//! the two together).

use crate::types::BookReject;

macro_rules! reject_codes {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
        #[repr(u16)]
        pub enum $name {
            $(#[error($text)] $variant = $code,)*
        }

        impl $name {
            /// Every code of this stage, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn code(self) -> u16 {
                self as u16
            }

            pub fn text(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn from_code(code: u16) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

reject_codes! {
    /// Gateway codes: per-frame rejects (the session goes on) and disconnect reasons (sent in a
    /// `Logout` before the engine closes the connection).
    GatewayCode {
        FrameTooLarge = 1001 => "frame length exceeds the maximum frame size",
        BadFrameLength = 1002 => "bad frame length (not a Cap'n Proto message)",
        MalformedMessage = 1003 => "malformed message",
        UnknownMessage = 1004 => "unknown message type",
        NotLoggedOn = 1005 => "not logged on",
        LogonRefused = 1006 => "logon refused: unknown account or wrong token",
        AlreadyLoggedOn = 1007 => "already logged on",
        AccountInUse = 1008 => "account already has an active session",
        SlowConsumer = 1009 => "slow consumer: output buffer limit exceeded",
        IdleTimeout = 1010 => "idle timeout",
        ShuttingDown = 1011 => "engine shutting down",
        TooManySessions = 1012 => "too many sessions",
        LogoutAck = 1013 => "logout",
        UnsupportedVersion = 1014 => "unsupported protocol version",
        TruncatedFrame = 1015 => "connection closed inside a frame",
        NotAdmin = 1016 => "not an admin session",
    }
}

reject_codes! {
    /// Risk codes: the sequencer's basic checks and the full risk engine's (`crate::risk`,
    /// docs/risk.md; `risk::RiskReject` has the same numbers and texts, a test pins them).
    RiskCode {
        UnknownSymbol = 2001 => "unknown symbol",
        SymbolClosed = 2002 => "symbol is closed",
        SymbolHalted = 2003 => "symbol is halted",
        AccountDisabled = 2004 => "account is disabled",
        KillSwitch = 2005 => "account kill switch is on",
        TickMultiple = 2006 => "price is not a multiple of the symbol's tick",
        LotMultiple = 2007 => "quantity is not a multiple of the symbol's lot",
        QtyBelowMin = 2008 => "quantity below the symbol's minimum",
        QtyAboveMax = 2009 => "quantity above the symbol's maximum",
        NoReferencePrice = 2010 => "market order without protection price and no reference price",
        NotionalAboveMax = 2011 => "order notional above the symbol's maximum",
        PriceBand = 2012 => "limit price outside the price band",
        MarketPriceBand = 2013 => "market protection price outside the market price band",
        RateLimit = 2014 => "order rate limit exceeded",
        MaxOpenOrders = 2015 => "too many open orders for this account",
        OpenBuyNotional = 2016 => "open buy notional limit exceeded",
        OpenSellNotional = 2017 => "open sell notional limit exceeded",
        PositionLimit = 2018 => "position limit exceeded",
        CreditLimit = 2019 => "credit limit exceeded",
        DuplicateClientId = 2020 => "duplicate client order id for this account today",
        AmendUnacknowledged = 2021 => "amend target not acknowledged yet",
        OrderIdInUse = 2022 => "order id in use",
        ControlsNeedRisk = 2023 => "trading controls need the risk engine ([risk] enabled)",
        BadAdmin = 2024 => "invalid admin request",
        BadLimitValue = 2025 => "invalid limit value",
    }
}

/// Text of any code of any stage (gateway, risk, book); `None` for an unknown code.
pub fn reject_text(code: u16) -> Option<String> {
    if let Some(c) = GatewayCode::from_code(code) {
        return Some(c.text().to_owned());
    }
    if let Some(c) = RiskCode::from_code(code) {
        return Some(c.text().to_owned());
    }
    BookReject::from_code(code).map(|c| c.to_string())
}

/// Every known code with its stage and text, in code order.
pub fn all_codes() -> Vec<(u16, &'static str, String)> {
    let mut out: Vec<(u16, &'static str, String)> = Vec::new();
    out.extend(
        GatewayCode::ALL
            .iter()
            .map(|c| (c.code(), "gateway", c.text().to_owned())),
    );
    out.extend(
        RiskCode::ALL
            .iter()
            .map(|c| (c.code(), "risk", c.text().to_owned())),
    );
    out.extend(
        (3001..=3099u16)
            .filter_map(BookReject::from_code)
            .map(|c| (c.code(), "book", c.to_string())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_stay_in_their_stage_ranges() {
        for c in GatewayCode::ALL {
            assert_eq!(GatewayCode::from_code(c.code()), Some(*c));
            assert!((1001..=1999).contains(&c.code()));
        }
        for c in RiskCode::ALL {
            assert_eq!(RiskCode::from_code(c.code()), Some(*c));
            assert!((2001..=2999).contains(&c.code()));
        }
    }

    #[test]
    fn risk_codes_are_the_risk_engines() {
        let ours: Vec<(u16, String)> = RiskCode::ALL
            .iter()
            .map(|c| (c.code(), c.text().to_owned()))
            .collect();
        let engine: Vec<(u16, String)> = crate::risk::RiskReject::ALL
            .iter()
            .map(|r| (r.code(), r.to_string()))
            .collect();
        assert_eq!(ours, engine);
    }

    #[test]
    fn every_stage_has_texts() {
        assert_eq!(reject_text(1005).as_deref(), Some("not logged on"));
        assert_eq!(reject_text(2001).as_deref(), Some("unknown symbol"));
        assert_eq!(
            reject_text(2012).as_deref(),
            Some("limit price outside the price band")
        );
        assert_eq!(
            reject_text(3001).as_deref(),
            Some("quantity must be positive and at most the symbol's maximum")
        );
        assert_eq!(reject_text(999), None);
        let all = all_codes();
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
