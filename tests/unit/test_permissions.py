"""bot.service.permissions: each permission's probe and its verdict, with a hand-written fake
client.

``FakeKraken`` answers ``private(method, params)`` as Kraken would for a key holding
``granted`` (Kraken's permission names): ``EGeneral:Permission denied`` for a method none
of whose permissions it holds, else what ``answers`` says (a result, or an error to raise).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import (
    AuthError,
    ExchangeError,
    LockoutError,
    OrderStateUnknown,
    RateLimitError,
    RejectedError,
    TransientError,
    error_from_kraken,
)
from bot.kraken.instruments import Instrument
from bot.service.permissions import (
    PERMISSION_DENIED,
    PROBE_TXID,
    RECHECK_S,
    Missing,
    Needed,
    missing_error,
    probe,
    probes,
    recent_pass,
    record_pass,
)
from bot.store import Store, key_id

BTC_USD = Instrument(
    "BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8, price_increment=1,
    qty_increment=1, qty_min=5_000, cost_min=Decimal("0.5"), altname="XBTUSD",
    rest_name="XXBTZUSD",
)  # fmt: skip
CREATE = "Orders and trades - Create & modify orders"
CANCEL = "Orders and trades - Cancel & close orders"
# What each probed method needs, as Kraken's REST pages say (one of them suffices).
NEEDS: dict[str, tuple[str, ...]] = {
    "Balance": ("Funds permissions - Query",),
    "OpenOrders": ("Orders and trades - Query open orders & trades",),
    "ClosedOrders": ("Orders and trades - Query closed orders & trades",),
    "AddOrder": (CREATE,),
    "CancelOrder": (CREATE, CANCEL),
    "GetWebSocketsToken": ("WebSocket interface - On",),
}
ALL = frozenset(p for needs in NEEDS.values() for p in needs)


class FakeKraken:
    def __init__(
        self, granted: frozenset[str] = ALL, answers: Mapping[str, Any] | None = None
    ) -> None:
        self.granted = granted
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, dict[str, object]]] = []

    async def private(
        self, method: str, params: Mapping[str, object] | None = None
    ) -> dict[str, Any]:
        self.calls.append((method, dict(params or {})))
        if not self.granted & set(NEEDS[method]):
            raise error_from_kraken(PERMISSION_DENIED)
        answer = self.answers.get(method, {})
        if isinstance(answer, BaseException):
            raise answer
        return dict(answer)


async def run_all(kraken: FakeKraken) -> list[Missing]:
    found = [await probe(kraken, needed) for needed in probes(BTC_USD)]
    return [m for m in found if m is not None]


def test_every_permission_the_daemon_uses_is_probed() -> None:
    assert {n.permission for n in probes(BTC_USD)} == ALL
    assert [n.method for n in probes(BTC_USD)] == list(NEEDS)


async def test_a_key_with_every_permission_passes_with_harmless_calls() -> None:
    kraken = FakeKraken(answers={"CancelOrder": RejectedError("EOrder:Invalid order")})
    assert await run_all(kraken) == []
    calls = dict(kraken.calls)
    # The order probe only validates (Kraken places nothing): the smallest order at the
    # lowest price that meets the cost minimum (0.00005 BTC at 10000.1 USD = 0.500005 USD).
    assert calls["AddOrder"] == {
        "pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "10000.1",
        "volume": "0.00005000", "oflags": "post", "validate": True,
    }  # fmt: skip
    # The cancel probe names a txid no order can have (not Kraken's OXXXXX-XXXXX-XXXXXX).
    assert calls["CancelOrder"] == {"txid": PROBE_TXID}
    assert not re.fullmatch(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}", PROBE_TXID)


@pytest.mark.parametrize("lacking", sorted(ALL - {CANCEL}))
async def test_each_missing_permission_is_named(lacking: str) -> None:
    missing = await run_all(FakeKraken(granted=ALL - {lacking}))
    assert [m.needed.permission for m in missing] == [lacking]
    (m,) = missing
    assert m.error == PERMISSION_DENIED
    assert f'"{lacking}"' in m.describe() and PERMISSION_DENIED in m.describe()


async def test_cancel_needs_either_cancel_or_create() -> None:
    """Kraken's cancels take "Cancel & close orders" or "Create & modify orders"."""
    assert await run_all(FakeKraken(granted=ALL - {CANCEL})) == []
    missing = await run_all(FakeKraken(granted=ALL - {CANCEL, CREATE}))
    assert [m.needed.method for m in missing] == ["AddOrder", "CancelOrder"]


async def test_the_issues_key_misses_websocket_and_closed_orders() -> None:
    """The example live config's old list: funds, open orders, create & modify."""
    old_list = frozenset(
        {"Funds permissions - Query", "Orders and trades - Query open orders & trades", CREATE}
    )
    missing = await run_all(FakeKraken(granted=old_list))
    assert [m.needed.permission for m in missing] == [
        "Orders and trades - Query closed orders & trades",
        "WebSocket interface - On",
    ]
    error = missing_error(missing)
    assert error.problems[0].startswith(
        'the API key lacks the permission "Orders and trades - Query closed orders & trades"'
    )
    assert "ClosedOrders answered EGeneral:Permission denied" in error.problems[0]
    assert error.problems[1].startswith('the API key lacks the permission "WebSocket interface')
    assert error.problems[2].startswith(
        'grant "Orders and trades - Query closed orders & trades", "WebSocket interface - On"'
    )


@pytest.mark.parametrize(
    "answer",
    [
        RejectedError("EOrder:Cost minimum not met"),  # the arguments were judged
        RejectedError("EGeneral:Invalid arguments:volume"),
        ExchangeError("EOrder:Something new"),  # not a permission error either
    ],
)
async def test_an_error_about_the_arguments_means_the_permission_is_there(
    answer: ExchangeError,
) -> None:
    needed = Needed(CREATE, "orders", "AddOrder", {})
    assert await probe(FakeKraken(answers={"AddOrder": answer}), needed) is None


@pytest.mark.parametrize(
    "answer",
    [
        TransientError("EService:Unavailable"),
        OrderStateUnknown("EHTTP:Timeout"),
        RateLimitError("EAPI:Rate limit exceeded"),
        AuthError("EAPI:Invalid key"),
        LockoutError("EGeneral:Temporary lockout"),
    ],
)
async def test_what_is_not_a_verdict_is_raised(answer: ExchangeError) -> None:
    """Transient errors are the caller's to wait out; a bad key is fatal, not a permission."""
    needed = Needed("WebSocket interface - On", "the feed", "GetWebSocketsToken", {})
    with pytest.raises(type(answer)):
        await probe(FakeKraken(answers={"GetWebSocketsToken": answer}), needed)


# --------------------------------------------------------------------------- what users read

REPO = Path(__file__).resolve().parents[2]


def live_trading_page() -> str:
    """The user's page on live trading (the README's former 'Live trading' section)."""
    text = (REPO / "docs/users/live-trading.md").read_text()
    assert text.startswith("# Live trading\n")
    return text


def test_the_live_trading_page_tells_a_new_user_exactly_which_permissions_to_grant() -> None:
    section = live_trading_page()
    rows = re.findall(r"^\| ([^|*]+): \*\*([^*]+)\*\* \|", section, flags=re.MULTILINE)
    assert {f"{group} - {item}" for group, item in rows} == ALL


def test_the_live_trading_page_shows_what_the_check_prints() -> None:
    """The page's example is the check's own output for the issue's key."""
    by_method = {n.method: n for n in probes(BTC_USD)}
    error = missing_error(
        [Missing(by_method[m], PERMISSION_DENIED) for m in ("ClosedOrders", "GetWebSocketsToken")]
    )
    printed = "\n".join(f"krakenbot: {line}" for line in error.problems)
    assert f"```\n{printed}\n```" in live_trading_page()


def test_the_example_live_config_lists_every_permission() -> None:
    text = (REPO / "config" / "live.example.yaml").read_text()
    block = text[text.index("with these permissions") : text.index('Never "Withdraw"')]
    listed: set[str] = set()
    group = ""
    for line in block.splitlines()[1:]:
        body = line.lstrip("#").strip()
        if ":" in body:
            group, _, body = body.partition(":")
        listed |= {f"{group.strip()} - {item.strip()}" for item in body.split(",") if item.strip()}
    assert listed == ALL


# --------------------------------------------------------------------------- the last pass

T0 = 1_800_000_000_000_000_000


def test_a_pass_is_remembered_for_its_key_for_a_while(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "bot.db")
    try:
        kid, other = key_id("key-a"), key_id("key-b")
        assert recent_pass(store, kid, T0) is None  # never checked
        record_pass(store, kid, T0)
        assert recent_pass(store, kid, T0 + 30 * 10**9) == 30.0
        assert recent_pass(store, other, T0 + 30 * 10**9) is None  # another key: probe
        late = T0 + int(RECHECK_S * 10**9)
        assert recent_pass(store, kid, late) is None  # too old: probe again
        assert recent_pass(store, kid, T0 - 10**9) is None  # the clock went back: probe
    finally:
        store.close()
