"""``/api/status``: the dashboard's JSON, built from one ``Observation`` (pure).

``build_status`` returns a JSON-ready dict, the same one the page renders and the live
stream pushes. Numbers are display strings at their instrument's or currency's precision
(``bot.service.fmt``), except counts, seconds and ages, which are JSON numbers.
Times are UTC (``time``) with their age in seconds at ``now_ms``. Every label that came
from outside (a reason, a readiness detail) is scrubbed of registered secrets. The
section "The dashboard's JSON" of docs/users/dashboard.md lists the keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from bot.core.log import scrub_text
from bot.kraken.instruments import from_scaled
from bot.service.dashboard.figures import distance, equity, held
from bot.service.fmt import Places, at_least, fixed, money, plain, signed, utc
from bot.service.metrics import SnapshotView
from bot.service.observe import FillSeen, Observation

__all__ = ["SCHEMA_VERSION", "build_status"]

SCHEMA_VERSION: Final = 1
_NS_PER_S: Final = 1e9
Row = dict[str, Any]


def _num(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def build_status(
    obs: Observation,
    *,
    ready: Mapping[str, Any],
    health: Mapping[str, Any],
    facts: Mapping[str, str],
    control: bool,
) -> dict[str, Any]:
    """The whole ``/api/status`` body; ``ready`` and ``health`` as /readyz and /healthz."""
    m = SnapshotView(obs.metrics)
    places = Places.of(obs.instruments)
    now = obs.at_ns
    return {
        "version": SCHEMA_VERSION,
        "now_ms": now // 1_000_000,
        "time": utc(now),
        "phase": "running" if obs.running else "starting",
        "mode": facts.get("mode", ""),
        "venue": scrub_text(facts.get("venue", "")),
        "facts": {k: scrub_text(v) for k, v in facts.items()},
        "ready": bool(ready.get("ready")),
        "failing": list(ready.get("failing", ())),
        "risk": obs.risk_state or m.state("risk_state") or "",
        "control": {"enabled": control},
        "money": _money(obs, places),
        "positions": _positions(obs, places),
        "orders": _orders(obs, places),
        "fills": _fills(obs, places),
        "balances": _balances(obs, places),
        "strategies": _strategies(obs, m, places),
        "rejections": _rejections(m),
        "health": _health(obs, m, ready, health),
    }


def _money(obs: Observation, places: Places) -> list[Row]:
    valued = equity(obs)
    rows = []
    for quote in sorted({*obs.pnl, *valued}):
        p, n = obs.pnl.get(quote), places.of_money(quote)
        worth = valued.get(quote)
        rows.append({
            "quote": quote,
            "today": None if p is None else signed(money(p.today, n)),
            "total": None if p is None else signed(money(p.total, n)),
            "realised": None if p is None else signed(money(p.realised, n)),
            "unrealised": None if p is None else signed(money(p.unrealised, n)),
            "equity": None if worth is None else money(worth, n),
        })  # fmt: skip
    return rows


def _positions(obs: Observation, places: Places) -> list[Row]:
    rows = []
    for pos in obs.positions:
        inst = obs.instrument(pos.symbol)
        n = places.of_money(pos.quote)
        price_places = inst.price_precision if inst is not None else n
        qty_places = inst.qty_precision if inst is not None else 8
        rows.append({
            "strategy": pos.strategy or "",
            "symbol": pos.symbol,
            "qty": signed(fixed(pos.qty, qty_places)),
            "flat": pos.is_flat,
            "avg_price": None if pos.avg_price is None else fixed(pos.avg_price, price_places),
            "mark": None if pos.mark is None else at_least(pos.mark, price_places),
            "unrealised": signed(money(pos.unrealised, n)),
            "realised": signed(money(pos.realised, n)),
            "fees": money(pos.fees, n),
            "quote": pos.quote,
        })  # fmt: skip
    return rows


def _orders(obs: Observation, places: Places) -> list[Row]:
    rows = []
    for order in obs.open_orders:
        inst = obs.instrument(order.symbol)
        pp = order.price_precision
        gap = distance(order, obs.mids.get(order.symbol))
        price = None if order.price is None else fixed(from_scaled(order.price, pp), pp)
        qty = from_scaled(order.qty, order.qty_precision)
        filled = from_scaled(order.filled_qty, order.qty_precision)
        price_places = inst.price_precision if inst is not None else pp
        rows.append({
            "cl_ord_id": order.cl_ord_id,
            "strategy": order.strategy,
            "symbol": order.symbol,
            "side": order.side,
            "type": order.order_type,
            "state": str(order.state),
            "price": price,
            "qty": fixed(qty, order.qty_precision),
            "filled": fixed(filled, order.qty_precision),
            "time": utc(order.created_ns),
            "age_s": _age(obs.at_ns, order.created_ns),
            "distance": None if gap is None else signed(fixed(gap[0], price_places)),
            "distance_bps": None if gap is None else signed(fixed(gap[1], 1)),
            "pending": "cancel" if order.cancel_pending else
                       "amend" if order.amend_pending else "",
        })  # fmt: skip
    return rows


def _fills(obs: Observation, places: Places) -> list[Row]:
    return [_fill(seen, obs, places) for seen in reversed(obs.fills)]


def _fill(seen: FillSeen, obs: Observation, places: Places) -> Row:
    fill = seen.fill
    inst = obs.instrument(fill.symbol)
    price = from_scaled(fill.price, fill.price_precision)
    price_places = max(fill.price_precision, inst.price_precision if inst is not None else 0)
    return {
        "exec_id": fill.exec_id,
        "strategy": seen.strategy,
        "symbol": fill.symbol,
        "side": fill.side,
        "qty": fixed(from_scaled(fill.qty, fill.qty_precision), fill.qty_precision),
        "price": fixed(price, price_places),
        "fee": places.amount(fill.fee_asset, fill.fee) if fill.fee_asset else plain(fill.fee),
        "fee_asset": fill.fee_asset,
        "liquidity": "maker" if fill.liquidity == "m" else "taker",
        "time": utc(fill.ts_ns),
        "ts_ms": fill.ts_ns // 1_000_000,
        "age_s": _age(obs.at_ns, fill.ts_ns),
    }


def _balances(obs: Observation, places: Places) -> dict[str, Any]:
    pairs = {s: (i.base, i.quote) for s, i in obs.instruments.items()}
    holds = held(obs.open_orders, pairs)
    rows = []
    for asset in sorted({*obs.balances, *holds}):
        total = obs.balances.get(asset, Decimal(0))
        hold = holds.get(asset, Decimal(0))
        rows.append({
            "asset": asset,
            "total": places.amount(asset, total),
            "held": places.amount(asset, hold),
            "free": places.amount(asset, total - hold),
        })  # fmt: skip
    at = obs.balances_at_ns
    return {
        "rows": rows,
        "time": None if at is None else utc(at),
        "age_s": None if at is None else _age(obs.at_ns, at),
    }


def _strategies(obs: Observation, m: SnapshotView, places: Places) -> list[Row]:
    fills: dict[str, float] = {}
    for lab, value in m.series("fills"):
        fills[lab[0]] = fills.get(lab[0], 0.0) + value
    open_orders: dict[str, int] = {}
    for order in obs.open_orders:
        open_orders[order.strategy] = open_orders.get(order.strategy, 0) + 1
    custom = [
        (lab, kind, value)
        for kind, family in (("gauge", "strategy_metric"), ("counter", "strategy_counter"))
        for lab, value in sorted(m.series(family))
    ]
    rows = []
    for s in obs.strategies:
        pnl = [
            {
                "quote": quote,
                "realised": signed(money(p.realised, places.of_money(quote))),
                "unrealised": signed(money(p.unrealised, places.of_money(quote))),
                "today": signed(money(p.today, places.of_money(quote))),
            }
            for (name, quote), p in sorted(obs.strategy_pnl.items())
            if name == s.name
        ]
        rows.append({
            "name": s.name,
            "state": s.state,
            "halt_reason": scrub_text(s.halt_reason),
            "risk": s.risk_state,
            "calls": s.calls,
            "errors": s.errors,
            "open_orders": open_orders.get(s.name, 0),
            "fills": int(fills.get(s.name, 0)),
            "pnl": pnl,
            "metrics": [
                {"name": lab[1], "symbol": lab[2], "kind": kind, "value": _num(value)}
                for lab, kind, value in custom
                if lab[0] == s.name
            ],
        })  # fmt: skip
    return rows


def _rejections(m: SnapshotView) -> dict[str, Any]:
    counted = sorted(
        ((int(v), r, s, st, a) for (s, st, a, r), v in m.series("rejections")),
        key=lambda row: (-row[0], *row[1:]),
    )
    rows = [
        {"source": s, "strategy": st, "action": a, "reason": r, "count": n}
        for n, r, s, st, a in counted
    ]
    by_reason: dict[str, int] = {}
    for n, reason, *_ in counted:
        by_reason[reason] = by_reason.get(reason, 0) + n
    reasons = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"by_reason": [{"reason": r, "count": n} for r, n in reasons], "rows": rows}


def _health(
    obs: Observation, m: SnapshotView, ready: Mapping[str, Any], health: Mapping[str, Any]
) -> dict[str, Any]:
    checks = [
        {"check": name, "ok": bool(c.get("ok")), "detail": scrub_text(str(c.get("detail", "")))}
        for name, c in ready.get("checks", {}).items()
    ]
    armed = m.get("deadman_armed")
    switch = None
    if armed is not None:
        switch = {
            "armed": armed == 1,
            "seconds_to_trigger": _num(m.get("deadman_seconds_to_trigger"), 3),
            "refreshes": int(m.get("deadman_refreshes") or 0),
            "failures": int(m.get("deadman_failures") or 0),
            "lapses": int(m.get("deadman_lapses") or 0),
        }
    headroom = []
    rest = m.get("rest_headroom")
    if rest is not None:
        headroom.append({"counter": "REST calls", "pair": "", "headroom": _num(rest, 3)})
    headroom += [
        {"counter": "trading", "pair": lab[0], "headroom": _num(v, 3)}
        for lab, v in sorted(m.series("trading_headroom"))
    ]
    return {
        "readiness": checks,
        "loop": {
            "healthy": bool(health.get("healthy")),
            "lag_s": health.get("loop_lag_s"),
            "max_lag_s": health.get("loop_lag_max_s"),
            "limit_s": health.get("max_loop_lag_s"),
            "uptime_s": health.get("uptime_s"),
        },
        "feeds": [_feed(m, f) for f in m.keys(("feed_connected", "feed_frames"))],
        "books": [_book(obs, m, s) for s in m.keys(("book_valid", "book_checksum_failures"))],
        "switch": switch,
        "headroom": headroom,
        "orders_by_state": [
            {
                "state": s,
                "now": int(m.get("orders", s) or 0),
                "finished": int(m.get("orders_finished", s) or 0),
            }
            for s in m.keys(("orders", "orders_finished"))
        ],
        "tasks": [
            {"task": lab[0], "restarts": int(v)} for lab, v in sorted(m.series("task_restarts"))
        ],
        "notify": [
            {
                "notifier": n,
                "sent": int(m.get("notify_sent", n) or 0),
                "dropped": int(sum(v for _, v in m.where("notify_dropped", n))),
                "queued": int(m.get("notify_queued", n) or 0),
            }
            for n in m.keys(("notify_sent", "notify_queued"))
        ],
        "observed": utc(obs.at_ns),
    }


def _feed(m: SnapshotView, f: str) -> Row:
    return {
        "feed": f,
        "connected": m.get("feed_connected", f) == 1,
        "frame_age_s": _num(m.get("feed_frame_age_seconds", f), 3),
        "frames": int(m.get("feed_frames", f) or 0),
        "reconnects": int(m.get("feed_reconnects", f) or 0),
        "unparsed": int(m.get("feed_unparsed_frames", f) or 0),
        "ping_rtt_s": _num(m.get("feed_ping_rtt_seconds", f), 4),
    }


def _book(obs: Observation, m: SnapshotView, s: str) -> Row:
    inst, mid, spread = obs.instrument(s), obs.mids.get(s), m.get("book_spread", s)
    shown_mid: str | float | None
    shown_spread: str | float | None
    if inst is None:
        shown_mid, shown_spread = _num(m.get("book_mid", s), 10), _num(spread, 10)
    else:  # the spread is a whole number of ticks: exact again at the pair's precision
        pp = inst.price_precision
        shown_mid = None if mid is None else at_least(mid, pp)
        shown_spread = None if spread is None else fixed(Decimal(repr(spread)), pp)
    return {
        "symbol": s,
        "valid": m.get("book_valid", s) == 1,
        "mid": shown_mid,
        "spread": shown_spread,
        "checksum_failures": int(m.get("book_checksum_failures", s) or 0),
    }


def _age(now_ns: int, then_ns: int) -> float:
    return round(max(now_ns - then_ns, 0) / _NS_PER_S, 1)
