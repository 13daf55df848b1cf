"""The Futures simulator's records: orders, positions, accounts, and what a call reports.

``FuturesOrder`` extends the matching engine's ``Order`` (``bot.sim.matching``) with what
Kraken Futures adds: the order type as Kraken names it (``lmt``, ``post``, ``ioc``,
``fok``, ``mkt``, ``stp``, ``take_profit``), ``reduceOnly``, the stop price and its
trigger signal. Resting orders live in the same ``Book`` as on spot.

An engine call returns a ``Report``: the ``orderEvents`` of the REST answer (``Ev``), the
``open_orders`` updates and the fills per account for the private feeds, the public
trades and the changed book levels for the public feeds, and which accounts' positions
or balances changed. ``OrderSnap`` is an order frozen at one moment, as both the REST
events and the WS frames print it.

This module owns these values; it holds no logic beyond small properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from bot.sim.matching import Order

__all__ = [
    "Account",
    "Ev",
    "FillRec",
    "FuturesOrder",
    "OrderSnap",
    "OrderUpdate",
    "Position",
    "Report",
    "TradeRec",
]


@dataclass(slots=True, eq=False)
class FuturesOrder(Order):
    """One Futures order (mutable, owned by the engine)."""

    kind: str = "lmt"
    reduce_only: bool = False
    stop_price: int | None = None
    trigger_signal: str = "last"
    limit_price: int | None = None  # as given (a triggered stp may rest at it)
    updated_ns: int = 0
    triggered: bool = False

    @property
    def is_trigger(self) -> bool:
        return self.kind in ("stp", "take_profit") and not self.triggered


@dataclass(frozen=True, slots=True)
class OrderSnap:
    """An order at one moment. ``kind`` is its Kraken order type; ``ws_type`` the
    ``open_orders`` feed's name for it (limit, stop, take_profit)."""

    order_id: str
    cli_ord_id: str | None
    kind: str
    symbol: str
    side: str
    qty: int
    filled: int
    limit_price: int | None
    stop_price: int | None
    reduce_only: bool
    trigger_signal: str | None
    received_ns: int
    updated_ns: int
    is_trigger: bool

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def ws_type(self) -> str:
        if self.is_trigger:
            return "stop" if self.kind == "stp" else "take_profit"
        return "limit"

    @property
    def rest_type(self) -> str:
        """``openorders``' ``orderType``: lmt, stop or take_profit."""
        if self.is_trigger:
            return "stop" if self.kind == "stp" else "take_profit"
        return "lmt"


@dataclass(frozen=True, slots=True)
class Ev:
    """One ``orderEvents`` entry: ``kind`` PLACE, EXECUTION, EDIT, CANCEL or REJECT;
    ``order`` the order after (EDIT: ``old`` before); EXECUTION has ``prior`` (the order
    before the fill), ``execution_id``, ``price`` and ``amount``; REJECT a ``reason``."""

    kind: str
    order: OrderSnap
    old: OrderSnap | None = None
    prior: OrderSnap | None = None
    execution_id: str | None = None
    price: int | None = None
    amount: int | None = None
    reason: str | None = None
    reduced_quantity: int | None = None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An ``open_orders`` delta for ``account``: ``is_cancel`` when the order left the
    open orders (filled, cancelled, rejected, triggered); ``reason`` Kraken's code."""

    account: str
    order: OrderSnap
    is_cancel: bool
    reason: str


@dataclass(frozen=True, slots=True)
class FillRec:
    """One fill of one account's order. For the history API: ``order`` just after the fill,
    the ``mark`` then, the signed ``position`` after it, ``limit_filled`` (the resting
    order was filled up by it) and ``seq``, the exchange's running number of its fills."""

    account: str
    fill_id: str
    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str
    price: int
    qty: int
    remaining: int
    fill_type: str  # maker | taker
    fee: Decimal
    order_kind: str
    taker_kind: str
    time_ns: int
    order: OrderSnap | None = None
    mark: int | None = None
    position: int | None = None
    limit_filled: bool = False
    seq: int = 0


@dataclass(frozen=True, slots=True)
class TradeRec:
    """A public trade: ``side`` is the taker's."""

    symbol: str
    uid: str
    side: str
    price: int
    qty: int
    time_ns: int


@dataclass(slots=True)
class Position:
    """A signed position (``qty`` > 0 long), its average entry price and the funding it
    has accrued but not realised."""

    qty: int = 0
    entry: Decimal = Decimal(0)
    unrealized_funding: Decimal = Decimal(0)
    opened_ns: int = 0


@dataclass(slots=True)
class Account:
    """One account: USD collateral, positions, open orders and fills."""

    name: str
    balance: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    open_orders: dict[str, FuturesOrder] = field(default_factory=dict)
    cli_ids: dict[str, str] = field(default_factory=dict)  # every cliOrdId ever used
    fills: list[FillRec] = field(default_factory=list)
    closed: dict[str, FuturesOrder] = field(default_factory=dict)

    def position_qty(self, symbol: str) -> int:
        """The signed position in ``symbol`` (0: none)."""
        pos = self.positions.get(symbol)
        return 0 if pos is None else pos.qty


@dataclass(slots=True)
class Report:
    """Everything one engine call changed, in order."""

    events: list[Ev] = field(default_factory=list)
    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[FillRec] = field(default_factory=list)
    trades: list[TradeRec] = field(default_factory=list)
    book: list[tuple[str, str, int, int]] = field(default_factory=list)
    accounts: set[str] = field(default_factory=set)
