# cift-engine order-entry protocol (TCP), schema version 1.
#
# Framing: every frame on the wire is a little-endian u32 byte length followed by exactly that
# many bytes holding ONE Cap'n Proto message in the standard (unpacked) serialization: a client
# sends ClientMessage frames, the engine sends ServerMessage frames. See docs/protocol.md.
#
# Evolution rule: this file only grows. New fields and new union members take the next free
# ordinal; nothing is ever renumbered, retyped, renamed in meaning or removed. Bump
# `protocolVersion` when something is appended.
#
# Units: prices are integers in the symbol's price units (see SymbolInfo.pricePrecision; a price
# must be a multiple of tickSize), quantities integers in lots units (a multiple of lotSize).
# Times are engine timestamps in nanoseconds since the Unix epoch.

@0xaefd8bc361bc1e3a;

const protocolVersion :UInt16 = 1;

enum Side {
  none @0;
  buy @1;
  sell @2;
}

enum OrdType {
  none @0;
  limit @1;
  market @2;
  stopMarket @3;
  stopLimit @4;
}

enum Tif {
  none @0;
  gtc @1;
  day @2;
  gtd @3;
  ioc @4;
  fok @5;
}

# Self-trade prevention mode of the incoming order (docs/book.md, "Self-trade prevention").
enum Stp {
  none @0;
  cancelIncoming @1;
  cancelResting @2;
  cancelBoth @3;
  decrementCancel @4;
}

enum CancelReason {
  none @0;
  user @1;
  iocRemainder @2;
  fokUnfilled @3;
  selfTrade @4;
  expired @5;
  massCancel @6;
  marketProtection @7;
}

# ---------------------------------------------------------------- client -> engine

struct ClientMessage {
  union {
    logon @0 :Logon;
    heartbeat @1 :Heartbeat;
    newOrder @2 :NewOrder;
    cancel @3 :Cancel;
    replace @4 :Replace;
    massCancel @5 :MassCancel;
    logout @6 :Logout;
    admin @7 :Admin;              # trading controls: only for accounts with `admin = true`
  }
}

# First message of every session. Trading messages before a successful logon are rejected (1005).
struct Logon {
  account @0 :UInt64;
  token @1 :Text;
  protocolVersion @2 :UInt16;
}

# Keeps the session alive (see gateway.idle_timeout_s); the engine answers with a Heartbeat
# carrying the same id.
struct Heartbeat {
  id @0 :UInt64;
}

struct NewOrder {
  symbol @0 :Text;
  clientOrderId @1 :UInt64;     # the client's own id, echoed in every report (0 = none)
  side @2 :Side;
  ordType @3 :OrdType;
  tif @4 :Tif;
  price @5 :Int64;              # limit price; protection limit for market/stop-market (0 = none)
  stopPrice @6 :Int64;          # trigger price of stop orders, else 0
  qty @7 :Int64;
  displayQty @8 :Int64;         # iceberg display size (0 = fully visible)
  expireTs @9 :UInt64;          # GTD expiry
  stp @10 :Stp;
  stpGroup @11 :UInt64;         # STP key (0 = the account)
  postOnly @12 :Bool;
}

# Target: orderId, or orderId = 0 and clientOrderId.
struct Cancel {
  symbol @0 :Text;
  orderId @1 :UInt64;
  clientOrderId @2 :UInt64;
}

# Cancel/replace. Target as for Cancel; price 0 keeps the price, qty is the new open quantity.
struct Replace {
  symbol @0 :Text;
  orderId @1 :UInt64;
  clientOrderId @2 :UInt64;
  price @3 :Int64;
  qty @4 :Int64;
}

# Cancels every order of the session's account on `symbol` (empty = every symbol); side none = both.
struct MassCancel {
  symbol @0 :Text;
  side @1 :Side;
}

# Sent by either side before closing. From the engine, `code` says why (docs/protocol.md).
struct Logout {
  code @0 :UInt16;
  text @1 :Text;
}

# ---------------------------------------------------------------- engine -> client

struct ServerMessage {
  seq @0 :UInt64;               # per-session output sequence number: 1, 2, 3, ... with no gaps
  union {
    logonAck @1 :LogonAck;
    heartbeat @2 :Heartbeat;
    ack @3 :Ack;
    reject @4 :Reject;
    fill @5 :Fill;
    cancelled @6 :Cancelled;
    replaced @7 :Replaced;
    triggered @8 :Triggered;
    logout @9 :Logout;
    adminReply @10 :AdminReply;
  }
}

struct SymbolInfo {
  name @0 :Text;
  tickSize @1 :Int64;
  lotSize @2 :Int64;
  pricePrecision @3 :UInt8;     # decimal places of one price unit, for display
  minPrice @4 :Int64;
  maxPrice @5 :Int64;
  maxOrderQty @6 :Int64;
}

struct LogonAck {
  account @0 :UInt64;
  sessionId @1 :UInt64;
  protocolVersion @2 :UInt16;
  idleTimeoutMs @3 :UInt32;     # the engine disconnects a session silent for this long
  symbols @4 :List(SymbolInfo);
}

# In every execution report: `cmdSeq` is the engine sequence number of the command that caused
# it (globally unique, increasing); `orderId` is the engine order id (= cmdSeq of the new order).

# New order accepted (stops: accepted into the stop book, isStop = true).
struct Ack {
  symbol @0 :Text;
  orderId @1 :UInt64;
  clientOrderId @2 :UInt64;
  side @3 :Side;
  price @4 :Int64;
  qty @5 :Int64;
  leaves @6 :Int64;
  stopPrice @7 :Int64;
  isStop @8 :Bool;
  cmdSeq @9 :UInt64;
}

# A command was refused; nothing changed. code: 1xxx gateway, 2xxx risk, 3xxx book.
struct Reject {
  symbol @0 :Text;
  orderId @1 :UInt64;           # the target of a cancel/replace, or the id the new order would have had
  clientOrderId @2 :UInt64;
  code @3 :UInt16;
  text @4 :Text;
  side @5 :Side;
  price @6 :Int64;
  qty @7 :Int64;
  cmdSeq @8 :UInt64;            # 0 when rejected before sequencing (gateway and risk rejects)
}

# One side of a trade, sent to each of the two accounts.
struct Fill {
  symbol @0 :Text;
  orderId @1 :UInt64;
  clientOrderId @2 :UInt64;
  side @3 :Side;                # this order's side
  price @4 :Int64;
  qty @5 :Int64;
  leaves @6 :Int64;             # this order's open quantity after the trade
  tradeId @7 :UInt64;           # per symbol: 1, 2, 3, ...
  aggressor @8 :Bool;           # true for the incoming (taker) order
  cmdSeq @9 :UInt64;
}

struct Cancelled {
  symbol @0 :Text;
  orderId @1 :UInt64;
  clientOrderId @2 :UInt64;
  side @3 :Side;
  price @4 :Int64;
  qty @5 :Int64;                # quantity cancelled
  leaves @6 :Int64;             # open quantity left (0 except after a partial STP decrement)
  reason @7 :CancelReason;
  cmdSeq @8 :UInt64;
}

struct Replaced {
  symbol @0 :Text;
  orderId @1 :UInt64;
  clientOrderId @2 :UInt64;
  side @3 :Side;
  price @4 :Int64;
  qty @5 :Int64;
  leaves @6 :Int64;
  oldPrice @7 :Int64;
  oldQty @8 :Int64;
  priorityKept @9 :Bool;
  cmdSeq @10 :UInt64;
}

# A stop order triggered and entered the book.
struct Triggered {
  symbol @0 :Text;
  orderId @1 :UInt64;
  clientOrderId @2 :UInt64;
  side @3 :Side;
  price @4 :Int64;
  qty @5 :Int64;
  stopPrice @6 :Int64;
  lastPrice @7 :Int64;
  cmdSeq @8 :UInt64;
}

# ---------------------------------------------------------------- trading controls (admin)
#
# Sent by a session logged on as an admin account (`admin = true` in its [[accounts]] entry);
# any other session gets an AdminReply with code 1016. Each accepted request is a sequenced,
# journaled command (docs/risk.md, "Controls"); the reply comes once it is durable.

enum AdminAction {
  none @0;
  killSwitchOn @1;      # cancel every order of `account` in every symbol, refuse its new orders
  killSwitchOff @2;
  disableAccount @3;    # refuse the account's new orders and amends; its orders stay
  enableAccount @4;
  massCancel @5;        # cancel `account`'s orders in `symbol` ("" = every symbol) on `side`
  haltSymbol @6;        # no new orders or amends in `symbol`; cancels accepted
  openSymbol @7;
  closeSymbol @8;       # every order command in `symbol` refused
  setLimit @9;          # set `account`'s limit `limit` to `value` (-1 = no limit)
  resetLimits @10;      # `account` follows the default limits again
}

enum LimitKey {
  none @0;
  maxOpenOrders @1;
  maxOpenBuyNotional @2;
  maxOpenSellNotional @3;
  creditLimit @4;
  maxPosition @5;
  ratePerSec @6;        # -1: no rate limit
  rateBurst @7;         # needs a rate
}

struct Admin {
  requestId @0 :UInt64;         # echoed in the reply
  action @1 :AdminAction;
  account @2 :UInt64;           # the account acted on (account actions, mass cancel, limits)
  symbol @3 :Text;              # symbol actions; mass cancel ("" = every symbol)
  side @4 :Side;                # mass cancel (none = both sides)
  limit @5 :LimitKey;
  value @6 :Int64;
}

struct AdminReply {
  requestId @0 :UInt64;
  action @1 :AdminAction;
  account @2 :UInt64;
  symbol @3 :Text;
  code @4 :UInt16;              # 0 = done; else a reject code (1016, 2001, 2023..2025)
  text @5 :Text;
  cmdSeq @6 :UInt64;            # the sequence number of the control (0 when refused)
}
