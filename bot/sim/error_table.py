"""Every error string the simulator sends, with where Kraken's docs or public reports show
it, or a mark that no source confirms it (pure data; docs/contributors/simulator/server.md
prints it).

A test checks that every Kraken-style string literal in ``bot/sim`` (``E<Category>:...``, and
the WS v2 subscription errors) is in ``ERRORS``, and that the docs print this table.
``price_decimals`` builds the one string with parameters Kraken fills in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot.core.errors import RejectedError
from bot.kraken.instruments import Instrument

__all__ = ["ERRORS", "SimError", "markdown_table", "price_decimals"]

_ERRORS_PAGE: Final = "https://docs.kraken.com/api/docs/guides/spot-errors"
_REST_LIMITS: Final = "https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits"
_TRADING_LIMITS: Final = "https://docs.kraken.com/api/docs/guides/spot-ratelimits"


@dataclass(frozen=True, slots=True)
class SimError:
    """One error string: when the simulator sends it, and its source (None: unconfirmed)."""

    code: str
    when: str
    source: str | None


ERRORS: Final[tuple[SimError, ...]] = (
    SimError("EAPI:Invalid key", "unknown `API-Key`", _ERRORS_PAGE),
    SimError("EAPI:Invalid signature", "`API-Sign` does not match", _ERRORS_PAGE),
    SimError("EAPI:Invalid nonce", "nonce missing, malformed or not increasing", _ERRORS_PAGE),
    SimError("EAPI:Rate limit exceeded", "REST call counter full", _REST_LIMITS),
    SimError(
        "EAPI:Invalid token",
        "WS token unknown, stale or revoked",
        "Kraken's SDK docs (krakenfx/kraken-api-sdk error-handling.md); KRAKEN.md §9.6",
    ),
    SimError("EGeneral:Permission denied", "the key lacks the permission", _ERRORS_PAGE),
    SimError(
        "EGeneral:Invalid arguments",
        "a malformed request or parameter (WS: without a suffix)",
        _ERRORS_PAGE,
    ),
    SimError(
        "EGeneral:Invalid arguments:<name>",
        "parameter `<name>` is wrong or unsupported (e.g. `ordertype`, `volume`)",
        f"{_ERRORS_PAGE} (suffix form); ccxt's kraken error map",
    ),
    SimError("EGeneral:Unknown method", "no such REST method", None),
    SimError(
        "EService:Unavailable",
        "the engine is paused (`pause_engine` fault; system status `maintenance`)",
        _ERRORS_PAGE,
    ),
    SimError(
        "EService:Market in cancel_only mode",
        "system status `cancel_only`: a new order, batch, amend or edit",
        _ERRORS_PAGE,
    ),
    SimError(
        "EService:Market in post_only mode",
        "system status `post_only`: an order that is not a post-only limit, or an amend to a"
        " price that would take",
        _ERRORS_PAGE,
    ),
    SimError(
        "EService:Market in limit_only mode", "system status `limit_only`: a market order", None
    ),
    SimError("EService:Busy", "a `rest_error` fault that asks for it", "ccxt's kraken error map"),
    SimError("EService:Deadline elapsed", "`deadline` has passed", _ERRORS_PAGE),
    SimError("EQuery:Unknown asset pair", "no such pair", "Kraken support: API error messages"),
    SimError("EQuery:Unknown asset", "Assets: no such asset", None),
    SimError("EOrder:Insufficient funds", "not enough available balance", _ERRORS_PAGE),
    SimError("EOrder:Order minimum not met", "volume below `ordermin`", _ERRORS_PAGE),
    SimError("EOrder:Cost minimum not met", "price × volume below `costmin`", _ERRORS_PAGE),
    SimError("EOrder:Tick size check failed", "price not a multiple of `tick_size`", _ERRORS_PAGE),
    SimError(
        "EOrder:Invalid price:<pair> price can only be specified up to <N> decimals.",
        "a price with more decimals than the pair's",
        "public reports (2026: `EOrder:Invalid price:ETH/GBP price can only be specified up"
        " to 2 decimals.`; older ones print the REST name, `XXBTZEUR`)",
    ),
    SimError(
        "EOrder:Orders limit exceeded", "open orders per pair at the tier's limit", _ERRORS_PAGE
    ),
    SimError("EOrder:Rate limit exceeded", "per-pair trading counter full", _TRADING_LIMITS),
    SimError(
        "EOrder:Unknown order",
        "cancel, amend or edit of an order that is not open",
        "public reports: ccxt#7338 (cancel of a cancelled order), zenbot#303",
    ),
    SimError("EOrder:Invalid order", "QueryOrders: unknown txid", None),
    SimError("EOrder:Post only order", "an amend would make a post-only order take", None),
    SimError(
        "Currency pair not supported <SYM>",
        "WS subscribe: unknown symbol",
        "Kraken's SDK docs (error-handling.md)",
    ),
    SimError(
        "Subscription name invalid",
        "WS subscribe: unknown channel",
        "Kraken's SDK docs (error-handling.md)",
    ),
    SimError("Subscription depth not supported", "WS book: depth not 10/25/100/500/1000", None),
    SimError("Already subscribed", "WS: the same subscription twice", None),
    SimError("Subscription Not Found", "WS unsubscribe of nothing", None),
    SimError("Malformed request", "WS frame that is not a JSON object", None),
    SimError("Method not found", "WS: unknown method", None),
)


def price_decimals(inst: Instrument) -> RejectedError:
    """Kraken's refusal of a price with too many decimals for ``inst``."""
    return RejectedError(
        f"EOrder:Invalid price:{inst.symbol} price can only be specified up to "
        f"{inst.price_precision} decimals."
    )


def markdown_table() -> str:
    """The table as docs/contributors/simulator/server.md prints it."""
    lines = ["| Error | When | Source |", "|---|---|---|"]
    for e in ERRORS:
        source = e.source if e.source is not None else "**unconfirmed** (the simulator's own)"
        lines.append(f"| `{e.code}` | {e.when} | {source} |")
    return "\n".join(lines)
