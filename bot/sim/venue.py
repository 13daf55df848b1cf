"""The simulator's venue: one exchange with its accounts, keys, limits, timers and pump.

``SimVenue`` is what every server handler reaches through ``request.app[VENUE_KEY]``. It
holds the pure ``Exchange`` and everything around it that a real venue keeps per API key
or per account: the key's secret and nonce floor, the REST call counter, the per-pair
trading counter (with the order-age cancel penalties), the dead-man's switch timers, the
WebSocket tokens, the open WebSocket connections and the fault schedule. Every change to
the exchange goes through ``execute``, which publishes its ``Result`` on the bus, so the
WebSocket feeds see REST orders, market steps and dead-man cancellations alike.

Order entry (``place_order``, ``amend_order``, ``cancel_order``, ``cancel_all``,
``cancel_all_after``) is shared by REST and WebSocket: each checks the engine is running and
what the system status lets in, charges the trading counter as Kraken counts it, and raises
Kraken's error otherwise. The system status (``system_status``: ``maintenance`` while
paused, else the mode ``set_system_status`` chose) is pushed to every open connection each
time it changes.

Time comes from the injected ``Clock``: wall time (``now_ns``) stamps orders and RFC3339
answers, the monotonic clock drives counters and timers. The pump (``run``, from
``serving.Pumped``) steps the market source and fires due timers every ``pump_interval_s``
on that clock; tests with a ``FakeClock`` call ``step`` themselves. The same seed, clock
and calls give the same market and the same ids.

This module owns that per-venue state; order entry's rules are ``venue_orders``' (a mixin
of ``SimVenue``), wire formats live in ``rest_*``, ``ws_*`` and ``admin``, faults in
``faults``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal, Protocol, runtime_checkable

import structlog
from aiohttp import web

from bot.core.clock import Clock, SystemClock
from bot.core.errors import ConfigError, RejectedError
from bot.kraken.instruments import InstrumentTable
from bot.sim.accounts import FeeSchedule
from bot.sim.bus import Bus
from bot.sim.exchange import Exchange
from bot.sim.faults import Faults
from bot.sim.keys import ALL_PERMISSIONS, KeySpec, Permission
from bot.sim.limits import OPEN_ORDER_LIMITS, RestCounter, Tier, TradingCounter
from bot.sim.market_data import MarketAction, MarketSource, SyntheticMarket
from bot.sim.pairs import default_instruments
from bot.sim.rest_stats import MarketStats
from bot.sim.serving import Pumped
from bot.sim.tokens import TokenRegistry
from bot.sim.venue_orders import (
    ERR_ORDER_RATE,
    ERR_UNAVAILABLE,
    MAINTENANCE,
    MAX_CANCEL_AFTER_S,
    ONLINE,
    REASON_DEADMAN,
    SYSTEM_STATUSES,
    OrderEntry,
)

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_BALANCES",
    "ERR_ORDER_RATE",
    "ERR_UNAVAILABLE",
    "MAX_CANCEL_AFTER_S",
    "REASON_DEADMAN",
    "VENUE_KEY",
    "ApiKey",
    "Credentials",
    "ScaledSource",
    "SimVenue",
    "WsConnection",
]

log = structlog.get_logger("sim.venue")

DEFAULT_ACCOUNT: Final = "trader"
DEFAULT_BALANCES: Final[Mapping[str, Decimal]] = {
    "USD": Decimal(100_000),
    "EUR": Decimal(100_000),
    "BTC": Decimal(10),
    "ETH": Decimal(100),
    "SOL": Decimal(1000),
}
_PRUNE_EVERY_S: Final = 60.0


class Upstream(Protocol):
    """What feeds a live market source (``bot.service.paper_live.UpstreamMirror``)."""

    async def run(self) -> None: ...


@runtime_checkable
class WsConnection(Protocol):
    """One open WebSocket, as the WS handlers register it in ``SimVenue.connections``."""

    conn_id: str
    kind: str  # "public" | "private"
    account: str | None  # private only

    async def drop(self) -> None:
        """Fault: close the socket abruptly."""
        ...

    def silence(self, seconds: float) -> None:
        """Fault: send no frame at all (no heartbeat either) for ``seconds``."""
        ...

    def corrupt_checksum(self, symbol: str | None = None) -> None:
        """Fault: the next book frame (of ``symbol``) carries a wrong checksum."""
        ...

    def revoke_token(self) -> None:
        """Fault: the private subscription's token is now invalid."""
        ...

    def send_status(self, system: str) -> None:
        """The system status changed: push Kraken's ``status`` frame with ``system``."""
        ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key pair as a client needs it, with the account it acts for and what it may do."""

    account: str
    api_key: str
    api_secret: str
    permissions: frozenset[Permission] = ALL_PERMISSIONS
    nonce_window: int = 0


@dataclass(slots=True)
class ApiKey:
    """One API key's server-side state: its secret, permissions, nonce sequence (with its
    optional window) and REST call counter."""

    api_key: str
    api_secret: str
    account: str
    rest: RestCounter
    permissions: frozenset[Permission] = ALL_PERMISSIONS
    nonce_window: int = 0
    last_nonce: int = -1
    _window_seen: set[int] = field(default_factory=set)

    def accept_nonce(self, nonce: int) -> bool:
        """Take ``nonce`` if Kraken would: above every earlier nonce of this key, or, with a
        nonce window of W, above ``last - W`` and not used before (replays stay refused)."""
        if nonce > self.last_nonce:
            if self.nonce_window:
                self._window_seen.add(nonce)
                floor = nonce - self.nonce_window
                if len(self._window_seen) > 64:
                    self._window_seen = {n for n in self._window_seen if n > floor}
            self.last_nonce = nonce
            return True
        if not self.nonce_window or nonce <= self.last_nonce - self.nonce_window:
            return False
        if nonce in self._window_seen:
            return False
        self._window_seen.add(nonce)
        return True


class ScaledSource:
    """A market source whose time runs ``speed`` times as fast as the venue's clock."""

    def __init__(self, inner: MarketSource, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.inner = inner
        self.speed = speed
        self._origin: int | None = None

    def step(self, now_ns: int) -> Sequence[MarketAction]:
        if self._origin is None:
            self._origin = now_ns
        return self.inner.step(self._origin + round((now_ns - self._origin) * self.speed))

    def on_fill(self, symbol: str, ref: int, remaining: int) -> None:
        self.inner.on_fill(symbol, ref, remaining)

    def set_depth(self, symbol: str, levels: int) -> None:
        setter = getattr(self.inner, "set_depth", None)
        if setter is not None:
            setter(symbol, levels)


def _check_secret(account: str, secret: str | None) -> None:
    if secret is None:
        return
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{account}: the API secret is not valid base64") from None


def _new_api_key() -> str:
    return base64.b64encode(secrets.token_bytes(42)).decode()  # 56 chars, as Kraken's


def _new_api_secret() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()  # 88 chars, as Kraken's


class SimVenue(OrderEntry, Pumped):
    """The simulated Kraken venue (see the module docstring)."""

    def __init__(
        self,
        *,
        instruments: InstrumentTable | None = None,
        clock: Clock | None = None,
        seed: int = 0,
        market: MarketSource | Literal["synthetic"] | None = "synthetic",
        speed: float = 1.0,
        tier: Tier | str = Tier.STARTER,
        fees: FeeSchedule | None = None,
        rate_limits: bool = True,
        open_orders_limit: int | None = None,
        pump_interval_s: float = 0.05,
        admin_token: str | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.instruments = instruments if instruments is not None else default_instruments()
        self.tier = Tier(tier)
        self.seed = seed
        source: MarketSource | None
        if market == "synthetic":
            source = SyntheticMarket(self.instruments.values(), seed)
        else:
            source = market
        if source is not None and speed != 1.0:
            source = ScaledSource(source, speed)
        self.market = source
        limit = open_orders_limit if open_orders_limit is not None else OPEN_ORDER_LIMITS[self.tier]
        self.exchange = Exchange(
            self.instruments.values(),
            seed=seed,
            fees=fees,
            open_orders_limit=limit,
            market=source,
        )
        self.fees = fees if fees is not None else FeeSchedule()
        self.bus = Bus()
        self.tokens = TokenRegistry()
        self.stats = MarketStats(self.instruments.values(), self.clock.time_ns)
        self.bus.subscribe_public(self.stats.on_result)
        self.connections: dict[str, WsConnection] = {}
        self.paused = False
        self.mode = ONLINE
        self.rate_limits = rate_limits
        self.pump_interval_s = pump_interval_s
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.faults: Faults = Faults(self)
        self._keys: dict[str, ApiKey] = {}
        self._accounts: dict[str, Credentials] = {}  # account -> its first key
        self._init_order_entry()
        self._ids = random.Random(seed + 1)
        self._last_prune = self.clock.monotonic()
        self.upstream: Upstream | None = None
        """A live market source's connection, run beside the pump (``sim.source: live``)."""

    # ------------------------------------------------------------------ accounts and keys
    def add_account(
        self,
        account: str,
        balances: Mapping[str, Decimal | int | str] | None = None,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        permissions: frozenset[Permission] | None = None,
        nonce_window: int = 0,
    ) -> Credentials:
        """Open ``account`` with ``balances`` (``DEFAULT_BALANCES`` if None) and its first API
        key (see ``add_key``: every permission unless told; the pair generated unless given,
        a 56-char key and a base64 secret of 64 bytes, like Kraken's)."""
        if account in self._accounts:
            raise RejectedError("EGeneral:Invalid arguments:account", f"{account} exists")
        _check_secret(account, api_secret)
        if api_key is not None and api_key in self._keys:
            raise RejectedError("EGeneral:Invalid arguments:api_key", "the key exists")
        for asset, amount in (DEFAULT_BALANCES if balances is None else balances).items():
            self.exchange.deposit(account, asset, amount)
        self._trading[account] = TradingCounter(self.tier)
        self._accounts[account] = Credentials(account, "", "")  # until its key exists
        creds = self.add_key(
            account,
            permissions,
            nonce_window=nonce_window,
            api_key=api_key,
            api_secret=api_secret,
        )
        self._accounts[account] = creds
        return creds

    def add_key(
        self,
        account: str,
        permissions: frozenset[Permission] | None = None,
        *,
        nonce_window: int = 0,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> Credentials:
        """A new API key on the existing ``account``, with ``permissions`` (all if None), its
        own nonce sequence (``nonce_window`` 0: strictly increasing) and REST counter."""
        if account not in self._accounts:
            raise RejectedError("EGeneral:Invalid arguments:account", f"no account {account}")
        if nonce_window < 0:
            raise RejectedError("EGeneral:Invalid arguments:nonce_window", str(nonce_window))
        _check_secret(account, api_secret)
        key = api_key or _new_api_key()
        if key in self._keys:
            raise RejectedError("EGeneral:Invalid arguments:api_key", "the key exists")
        granted = ALL_PERMISSIONS if permissions is None else frozenset(permissions)
        creds = Credentials(account, key, api_secret or _new_api_secret(), granted, nonce_window)
        self._keys[key] = ApiKey(
            key,
            creds.api_secret,
            account,
            RestCounter(self.tier),
            permissions=granted,
            nonce_window=nonce_window,
        )
        return creds

    def add_keys(self, specs: Sequence[KeySpec]) -> list[Credentials]:
        """The keys a ``--keys`` file declares; an account it names that does not exist is
        opened with the spec's ``balances`` (and nothing else)."""
        out = []
        for spec in specs:
            options: dict[str, Any] = {
                "nonce_window": spec.nonce_window,
                "api_key": spec.api_key,
                "api_secret": spec.api_secret,
            }
            if spec.account in self._accounts:
                out.append(self.add_key(spec.account, spec.permissions, **options))
            else:
                out.append(
                    self.add_account(
                        spec.account, spec.balances, permissions=spec.permissions, **options
                    )
                )
        return out

    def keys_of(self, account: str) -> list[ApiKey]:
        """Every API key of ``account``, oldest first."""
        return [k for k in self._keys.values() if k.account == account]

    def credentials(self, account: str | None = None) -> Credentials:
        """``account``'s key pair (the first account's if None)."""
        if account is None:
            if not self._accounts:
                raise KeyError("the venue has no account")
            return next(iter(self._accounts.values()))
        return self._accounts[account]

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def api_key(self, key: str) -> ApiKey | None:
        """The state of API key ``key`` (None: unknown key)."""
        return self._keys.get(key)

    def trading_counter(self, account: str) -> TradingCounter:
        return self._trading[account]

    # ------------------------------------------------------------------ time and engine
    def new_id(self, prefix: str) -> str:
        """A Kraken-looking id (``TEZA4R-DSDGT-IJBOJK``) from the venue's seeded stream."""
        s = "".join(self._ids.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=16))
        return f"{prefix}{s[:5]}-{s[5:10]}-{s[10:]}"

    def ensure_depth(self, symbol: str, depth: int) -> None:
        """Make the market quote at least ``depth`` levels of ``symbol`` (a deep subscriber)."""
        inst = self.instruments.lookup(symbol)
        setter = getattr(self.market, "set_depth", None)
        if inst is not None and setter is not None:
            setter(inst.symbol, depth)

    def pause(self) -> None:
        """Stop the matching engine: order entry answers ``EService:Unavailable``, the market
        pump and the dead-man timers stop until ``resume``. The system status reads
        ``maintenance`` meanwhile, and every connection is told."""
        if not self.paused:
            self.paused = True
            log.warning("engine_paused")
            self._announce_status()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            log.warning("engine_resumed")
            self._announce_status()

    @property
    def system_status(self) -> str:
        """Kraken's system status: ``maintenance`` while paused, else the mode
        (``online``, ``cancel_only``, ``post_only`` or ``limit_only``)."""
        return MAINTENANCE if self.paused else self.mode

    async def set_system_status(self, status: str) -> None:
        """Put the venue in one of Kraken's system states. ``maintenance`` pauses the engine
        (a ``pause_engine`` fault with no end); any other state ends every pause and sets
        what order entry accepts."""
        if status not in SYSTEM_STATUSES:
            raise ValueError(f"system status must be one of {', '.join(SYSTEM_STATUSES)}")
        if status == MAINTENANCE:
            await self.faults.inject(kind="pause_engine")
            return
        before = self.system_status
        self.mode = status
        if self.paused:
            self.faults.resume_engine()  # announces the new status
        elif self.system_status != before:
            self._announce_status()

    def _announce_status(self) -> None:
        status = self.system_status
        log.warning("system_status", status=status)
        for conn in tuple(self.connections.values()):
            conn.send_status(status)

    # ------------------------------------------------------------------ connections
    def register(self, conn: WsConnection) -> None:
        self.connections[conn.conn_id] = conn

    def unregister(self, conn: WsConnection) -> None:
        self.connections.pop(conn.conn_id, None)

    def find_connections(
        self,
        *,
        kind: str | None = None,
        conn_id: str | None = None,
        account: str | None = None,
    ) -> list[WsConnection]:
        """Open connections matching every filter given."""
        return [
            c
            for c in tuple(self.connections.values())
            if (kind is None or c.kind == kind)
            and (conn_id is None or c.conn_id == conn_id)
            and (account is None or c.account == account)
        ]

    # ------------------------------------------------------------------ the pump
    def tick(self) -> None:
        """One pump step: fault bounds, the market, then due dead-man timers."""
        mono = self.monotonic()
        self.faults.expire(mono)
        if self.paused:
            return
        if self.market is not None:
            self.execute(lambda: self.exchange.advance(self.now_ns()))
        self.fire_deadman()
        if mono - self._last_prune >= _PRUNE_EVERY_S:
            self._last_prune = mono
            self.prune_order_entry()

    @property
    def market_ready(self) -> bool:
        """Whether the market source has valid books to serve (a live source's upstream
        is up and verified; any other source always)."""
        return bool(getattr(self.market, "ready", True))

    async def run(self) -> None:
        """The pump (``Pumped.run``); with an ``upstream`` (a live source's feed), that
        runs beside it, in one TaskGroup."""
        if self.upstream is None:
            await super().run()
            return
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.upstream.run(), name="sim-upstream")
            await super().run()


VENUE_KEY: Final = web.AppKey("venue", SimVenue)
"""Where the server keeps the venue: ``request.app[VENUE_KEY]``."""
