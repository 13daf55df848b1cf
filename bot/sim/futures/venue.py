"""The Futures simulator's venue: the exchange and everything kept per key and account.

``FuturesVenue`` holds the pure ``FuturesExchange`` and what a real venue keeps around it:
API keys (secret, nonce window, ``/derivatives`` and history budgets), the dead-man's
switch timer of each account (``cancelallordersafter``), the open WebSocket connections,
the fault schedule, the book and trade sequence numbers of the public feeds, and 24-hour
trade statistics for the tickers. Every change to the exchange goes through ``execute``, which
numbers the changed book levels (one ``seq`` per product, shared by every connection) and
hands the ``Report`` to each listener (the WebSocket sessions), so the feeds see REST
orders, market steps, funding and dead-man cancellations alike.

Time comes from the injected ``Clock``: wall time stamps orders and answers, the
monotonic clock drives budgets and timers. ``run`` is the pump: ``step`` every
``pump_interval_s`` (market, triggers, funding, timers); tests on a ``FakeClock`` call
``step`` themselves.

This module owns that state; wire formats are ``rest``'s and ``ws``'s.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal, Protocol, TypeVar

import structlog
from aiohttp import web

from bot.core.clock import Clock, SystemClock
from bot.sim.futures.access import FULL, KeyAccess
from bot.sim.futures.auth import NonceWindow
from bot.sim.futures.contracts import Contract, default_contracts
from bot.sim.futures.engine import FuturesExchange
from bot.sim.futures.faults import FuturesFaults
from bot.sim.futures.records import Report, TradeRec
from bot.sim.market_data import MarketSource, SyntheticMarket
from bot.sim.serving import Pumped

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_BALANCE",
    "FUTURES_VENUE_KEY",
    "Budget",
    "Credentials",
    "FuturesVenue",
    "KeyState",
    "Published",
    "Session",
    "history_pool",
]

log = structlog.get_logger("sim.futures.venue")

DEFAULT_ACCOUNT: Final = "trader"
DEFAULT_BALANCE: Final = Decimal(100_000)
_DAY_NS: Final = 86_400 * 10**9
_RECENT_TRADES: Final = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Published:
    """One exchange call's changes as the feeds see them: the report, the changed book
    levels ``(symbol, side, price, qty, seq)`` and the trades with their ``seq``."""

    report: Report
    book: list[tuple[str, str, int, int, int]]
    trades: list[tuple[TradeRec, int]]


class Session(Protocol):
    """One open WebSocket, as ``ws`` registers it."""

    conn_id: str
    account: str | None

    async def drop(self) -> None: ...

    def silence(self, seconds: float) -> None: ...

    def skip_book_delta(self, symbol: str | None) -> None: ...


class Budget:
    """One of the simulator's own budgets: up to ``capacity`` per ``window_s``, refilled
    continuously (Kraken: 500 every 10 s for ``/derivatives``; 100 every 10 minutes for
    the history API, ``history_pool``)."""

    __slots__ = ("_level", "_stamp", "capacity", "rate")

    def __init__(self, capacity: float = 500.0, window_s: float = 10.0) -> None:
        self.capacity = capacity
        self.rate = capacity / window_s
        self._level = 0.0
        self._stamp: float | None = None

    def _drain(self, now: float) -> None:
        if self._stamp is not None:
            self._level = max(0.0, self._level - (now - self._stamp) * self.rate)
        self._stamp = now

    def spend(self, cost: float, now: float) -> bool:
        """Charge ``cost`` and say yes, or refuse (and charge nothing)."""
        self._drain(now)
        if self._level + cost > self.capacity + 1e-9:
            return False
        self._level += cost
        return True

    def wait_s(self, cost: float, now: float) -> float:
        """Seconds until a call of ``cost`` would be taken (0.0: now)."""
        self._drain(now)
        return max(0.0, self._level + cost - self.capacity) / self.rate


def history_pool() -> Budget:
    """A key's history API budget: "a pool of up to 100 tokens that continually replenishes
    at a rate of 100 every 10 minutes"
    (https://docs.kraken.com/api/docs/guides/futures-rate-limits)."""
    return Budget(100.0, 600.0)


@dataclass(frozen=True, slots=True)
class Credentials:
    account: str
    api_key: str
    api_secret: str


@dataclass(slots=True)
class KeyState:
    api_key: str
    api_secret: str
    account: str
    nonces: NonceWindow
    budget: Budget
    access: KeyAccess = FULL
    history: Budget = field(default_factory=history_pool)


@dataclass(slots=True)
class _Stats:
    """Trades of one contract in the last 24 h (for the tickers)."""

    trades: deque[tuple[int, int, int]] = field(default_factory=deque)  # (ns, price, qty)

    def add(self, ns: int, price: int, qty: int) -> None:
        self.trades.append((ns, price, qty))

    def window(self, now_ns: int) -> list[tuple[int, int, int]]:
        while self.trades and self.trades[0][0] <= now_ns - _DAY_NS:
            self.trades.popleft()
        return list(self.trades)


class FuturesVenue(Pumped):
    """The simulated Kraken Futures venue (see the module docstring)."""

    def __init__(
        self,
        *,
        contracts: Mapping[str, Contract] | None = None,
        clock: Clock | None = None,
        seed: int = 0,
        market: MarketSource | Literal["synthetic"] | None = "synthetic",
        funding_rate: Decimal = Decimal("0.0001"),
        funding_interval_s: float = 3600.0,
        maker_fee: Decimal = Decimal("0.0002"),
        taker_fee: Decimal = Decimal("0.0005"),
        nonce_window: int = 0,
        rate_limits: bool = True,
        pump_interval_s: float = 0.05,
        heartbeat_s: float = 60.0,
        ticker_interval_s: float = 1.0,
        admin_token: str | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.contracts = dict(contracts if contracts is not None else default_contracts())
        source: MarketSource | None
        index: Callable[[str], int] | None = None
        if market == "synthetic":
            synthetic = SyntheticMarket(
                [c.market_instrument() for c in self.contracts.values()],
                seed,
                profiles={c.symbol: c.profile() for c in self.contracts.values()},
            )
            source, index = synthetic, synthetic.mid
        else:
            source = market
        self.exchange = FuturesExchange(
            self.contracts,
            seed=seed,
            market=source,
            index_source=index,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
            funding_rate=funding_rate,
            funding_interval_s=funding_interval_s,
        )
        self.nonce_window = nonce_window
        self.rate_limits = rate_limits
        self.pump_interval_s = pump_interval_s
        self.heartbeat_s = heartbeat_s
        self.ticker_interval_s = ticker_interval_s
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.paused = False
        self.faults = FuturesFaults(self)
        self.connections: dict[str, Session] = {}
        self.listeners: list[Callable[[Published], None]] = []
        self.book_seq = dict.fromkeys(self.contracts, 0)
        self.trade_seq = dict.fromkeys(self.contracts, 0)
        self._stats = {s: _Stats() for s in self.contracts}
        self.recent_trades: dict[str, deque[tuple[TradeRec, int]]] = {
            s: deque(maxlen=_RECENT_TRADES) for s in self.contracts
        }
        self._keys: dict[str, KeyState] = {}
        self._accounts: dict[str, Credentials] = {}
        self._deadman: dict[str, float] = {}  # account -> monotonic trigger time
        self.deadman_fired: list[tuple[str, int]] = []  # (account, orders cancelled)

    # ------------------------------------------------------------------ time
    def now_ns(self) -> int:
        return self.clock.time_ns()

    def monotonic(self) -> float:
        return self.clock.monotonic()

    # ------------------------------------------------------------------ accounts and keys
    def add_account(
        self,
        account: str,
        balance: Decimal | int | str = DEFAULT_BALANCE,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> Credentials:
        """Open ``account`` with ``balance`` USD of collateral and one key pair (generated
        unless given: a 56-character key and an 88-character base64 secret)."""
        key = api_key or base64.b64encode(secrets.token_bytes(42)).decode()
        secret = api_secret or base64.b64encode(secrets.token_bytes(64)).decode()
        base64.b64decode(secret, validate=True)  # a bad secret fails here, loudly
        self.exchange.add_account(account, Decimal(balance))
        creds = Credentials(account, key, secret)
        self._accounts[account] = creds
        self._keys[key] = KeyState(key, secret, account, NonceWindow(self.nonce_window), Budget())
        return creds

    def add_key(
        self,
        account: str,
        access: KeyAccess = FULL,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> Credentials:
        """Another key pair on an open ``account``, with ``access`` (Kraken Futures' General
        API and Withdrawal API levels, ``bot.sim.futures.access``); ``KeyError`` if the
        account is not open, ``ValueError`` if the key exists or the secret is not base64."""
        if account not in self._accounts:
            raise KeyError(account)
        key = api_key or base64.b64encode(secrets.token_bytes(42)).decode()
        secret = api_secret or base64.b64encode(secrets.token_bytes(64)).decode()
        base64.b64decode(secret, validate=True)
        if key in self._keys:
            raise ValueError("that API key exists")
        state = KeyState(key, secret, account, NonceWindow(self.nonce_window), Budget(), access)
        self._keys[key] = state
        return Credentials(account, key, secret)

    def credentials(self, account: str | None = None) -> Credentials:
        if account is None:
            return next(iter(self._accounts.values()))
        return self._accounts[account]

    def key(self, api_key: str) -> KeyState | None:
        return self._keys.get(api_key)

    def account_uid(self, account: str) -> str:
        """The account id the WebSocket feeds print (a UUID, stable per name)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"krakenbot-sim:{account}"))

    # ------------------------------------------------------------------ the exchange
    def execute(self, call: Callable[[], T], report_of: Callable[[T], Report]) -> T:
        """Run one exchange call and publish what it changed."""
        result = call()
        self.publish(report_of(result))
        return result

    def publish(self, report: Report) -> None:
        """Number the changed levels and trades (one ``seq`` per product and feed) and
        hand them to every listener."""
        book: list[tuple[str, str, int, int, int]] = []
        for symbol, side, price, qty in report.book:
            self.book_seq[symbol] += 1
            book.append((symbol, side, price, qty, self.book_seq[symbol]))
        trades: list[tuple[TradeRec, int]] = []
        for trade in report.trades:
            self._stats[trade.symbol].add(trade.time_ns, trade.price, trade.qty)
            self.trade_seq[trade.symbol] += 1
            numbered = (trade, self.trade_seq[trade.symbol])
            trades.append(numbered)
            self.recent_trades[trade.symbol].append(numbered)
        published = Published(report, book, trades)
        for listener in list(self.listeners):
            listener(published)

    def stats(self, symbol: str) -> list[tuple[int, int, int]]:
        return self._stats[symbol].window(self.now_ns())

    def open_interest(self, symbol: str) -> int:
        return sum(
            pos.qty
            for acct in self.exchange.accounts.values()
            for s, pos in acct.positions.items()
            if s == symbol and pos.qty > 0
        )

    # ------------------------------------------------------------------ dead-man's switch
    def arm_deadman(self, account: str, timeout_s: int) -> tuple[int, int | None]:
        """``cancelallordersafter``: (now, trigger time) in wall ns; None when disarmed."""
        now_ns = self.now_ns()
        if timeout_s == 0:
            self._deadman.pop(account, None)
            return now_ns, None
        self._deadman[account] = self.monotonic() + timeout_s
        return now_ns, now_ns + timeout_s * 10**9

    def deadman_armed(self, account: str) -> bool:
        return account in self._deadman

    def fire_deadman(self) -> None:
        """Cancel every order of each account whose timer ran out; the timer then stays
        off until the next non-zero timeout (as Kraken documents for spot and Futures)."""
        now = self.monotonic()
        for account, due in list(self._deadman.items()):
            if due > now:
                continue
            del self._deadman[account]
            outcome = self.execute(
                lambda a=account: self.exchange.cancel_all(  # type: ignore[misc]
                    a, self.now_ns(), reason="dead_man_switch"
                ),
                lambda o: o.report,
            )
            self.deadman_fired.append((account, len(outcome.cancelled)))
            log.warning("deadman_fired", account=account, cancelled=len(outcome.cancelled))

    # ------------------------------------------------------------------ the pump
    def tick(self) -> None:
        self.faults.expire(self.monotonic())
        if self.paused:
            return
        self.execute(lambda: self.exchange.advance(self.now_ns()), lambda r: r)
        self.fire_deadman()


FUTURES_VENUE_KEY: Final = web.AppKey("futures_venue", FuturesVenue)
