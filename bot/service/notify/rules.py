"""Which changes are worth a message: two pictures of the daemon in, notices out (pure).

``NoticeRules.step(observation)`` compares the picture with the previous one and returns:

==================  ========  ==========================================================
kind                level     when
==================  ========  ==========================================================
risk_state          critical  the bot's risk state became HALTED (warning: REDUCING,
                              info: back to ACTIVE)
strategy_risk       warning   a strategy's own state changed (a pause, a resume, its
                              daily loss limit) while the bot's did not
strategy_halted     critical  a strategy's runner halted (too many handler errors)
switch_lapse        critical  the dead-man's switch may have fired (``deadman_lapses``)
switch_disarmed     critical  the switch was armed and is not any more
order_unknown       warning   an order's fate became unknown (a lost answer)
order_lost          critical  an order was given up as LOST
task_restarted      warning   a supervised task stopped unasked and was restarted
fill / fills        info      each fill (``notify.fills: each``), or a summary of the
                              fills of the last ``fills_every_s`` (``batch``)
==================  ========  ==========================================================

Start and stop are told by the daemon itself (``started``, ``stopped``). The first picture
is the baseline: nothing that was already so when the daemon started is reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from bot.config import NotifyConfig
from bot.execution.orders import OrderState
from bot.kraken.instruments import from_scaled
from bot.service.fmt import fixed
from bot.service.metrics import Snapshot
from bot.service.notify.notice import Level, Notice, notice
from bot.service.observe import FillSeen, Observation

__all__ = ["NoticeRules"]

_NS: Final = 1_000_000_000
_RISK_LEVEL: Final[dict[str, Level]] = {"halted": "critical", "reducing": "warning"}


def _counter(snap: Snapshot, name: str) -> dict[tuple[str, ...], float]:
    return dict(snap.get(name, ()))


def _value(snap: Snapshot, name: str, *labels: str) -> float:
    return _counter(snap, name).get(labels, 0.0)


class NoticeRules:
    """See the module docstring; ``label`` starts every message (``krakenbot paper``)."""

    def __init__(self, settings: NotifyConfig, label: str = "krakenbot") -> None:
        self.settings = settings
        self.label = label
        self._prev: Observation | None = None
        self._batch: list[FillSeen] = []
        self._batch_since: int | None = None  # when the batch's first fill was seen (ns)

    def step(self, obs: Observation) -> list[Notice]:
        out: list[Notice] = []
        prev = self._prev
        if obs.running:
            if prev is not None and prev.running:
                out += self._changes(prev, obs)
            out += self._fills(obs)
            self._prev = obs
        return out

    def flush(self, now_ns: int) -> list[Notice]:
        """The fills batched so far, now (the daemon is stopping)."""
        return self._summary(now_ns) if self._batch else []

    # -- changes -------------------------------------------------------------------------------

    def _changes(self, prev: Observation, obs: Observation) -> Iterable[Notice]:
        at, name = obs.at_ns, self.label
        if obs.risk_state != prev.risk_state:
            level = _RISK_LEVEL.get(obs.risk_state, "info")
            text = f"{name}: risk state {prev.risk_state} → {obs.risk_state.upper()}"
            if obs.risk_state == "halted":
                text += ": no new orders, open ones canceled"
            yield notice("risk_state", level, text, at, {"from": prev.risk_state,
                                                         "to": obs.risk_state})  # fmt: skip
        before = {s.name: s for s in prev.strategies}
        for s in obs.strategies:
            was = before.get(s.name)
            if was is None:
                continue
            if s.state == "halted" and was.state != "halted":
                text = f"{name}: strategy {s.name} HALTED: {s.halt_reason}; its orders canceled"
                yield notice("strategy_halted", "critical", text, at, {"strategy": s.name})
            elif s.risk_state != was.risk_state and obs.risk_state == prev.risk_state:
                text = f"{name}: strategy {s.name} risk state {was.risk_state} → {s.risk_state}"
                yield notice("strategy_risk", "warning", text, at, {"strategy": s.name,
                                                                   "to": s.risk_state})  # fmt: skip
        yield from self._switch(prev, obs)
        yield from self._orders(prev, obs)
        old, new = _counter(prev.metrics, "task_restarts"), _counter(obs.metrics, "task_restarts")
        for labels, count in sorted(new.items()):
            if count > old.get(labels, 0.0):
                task = labels[0]
                text = f"{name}: task {task} stopped unasked and was restarted ({int(count)}×)"
                yield notice("task_restarted", "warning", text, at, {"task": task})

    def _switch(self, prev: Observation, obs: Observation) -> Iterable[Notice]:
        at, name = obs.at_ns, self.label
        lapses = _value(obs.metrics, "deadman_lapses")
        if lapses > _value(prev.metrics, "deadman_lapses"):
            text = (
                f"{name}: the dead-man's switch may have fired: Kraken may have canceled"
                " every order; reconciling"
            )
            yield notice("switch_lapse", "critical", text, at)
        armed, was = obs.metrics.get("deadman_armed"), prev.metrics.get("deadman_armed")
        if was and armed and was[0][1] == 1 and armed[0][1] == 0:
            text = f"{name}: the dead-man's switch is no longer armed: no new order may leave"
            yield notice("switch_disarmed", "critical", text, at)

    def _orders(self, prev: Observation, obs: Observation) -> Iterable[Notice]:
        at, name = obs.at_ns, self.label
        known = {o.cl_ord_id for o in prev.open_orders if o.state is OrderState.UNKNOWN}
        for order in obs.open_orders:
            if order.state is OrderState.UNKNOWN and order.cl_ord_id not in known:
                text = (
                    f"{name}: order {order.cl_ord_id} ({order.strategy} {order.side}"
                    f" {order.symbol}): fate unknown, looking it up on the exchange"
                )
                yield notice("order_unknown", "warning", text, at, {"cl_ord_id": order.cl_ord_id})
        lost = _value(obs.metrics, "orders_finished", "lost")
        gone = int(lost - _value(prev.metrics, "orders_finished", "lost"))
        if gone > 0:
            text = (
                f"{name}: {gone} order{'s' if gone != 1 else ''} LOST: sent, never seen on the"
                " exchange after the grace time"
            )
            yield notice("order_lost", "critical", text, at, {"count": gone})

    # -- fills ---------------------------------------------------------------------------------

    def _fills(self, obs: Observation) -> list[Notice]:
        mode = self.settings.fills
        if mode == "off":
            return []
        if mode == "each":
            return [
                notice(
                    "fill",
                    "info",
                    f"{self.label}: fill: {_describe(f)}",
                    obs.at_ns,
                    {"strategy": f.strategy, "symbol": f.fill.symbol},
                )
                for f in obs.new_fills
            ]
        if obs.new_fills:
            if not self._batch:
                self._batch_since = obs.at_ns
            self._batch.extend(obs.new_fills)
        since = self._batch_since
        due = since is not None and obs.at_ns - since >= self.settings.fills_every_s * _NS
        if self._batch and due:
            return self._summary(obs.at_ns, obs)
        return []

    def _summary(self, at_ns: int, obs: Observation | None = None) -> list[Notice]:
        fills, self._batch, self._batch_since = self._batch, [], None
        groups: dict[tuple[str, str], list[FillSeen]] = {}
        for seen in fills:
            groups.setdefault((seen.fill.symbol, seen.fill.side), []).append(seen)
        parts = []
        for (symbol, side), group in sorted(groups.items()):
            qty = sum((from_scaled(f.fill.qty, f.fill.qty_precision) for f in group), Decimal(0))
            cost = sum(
                (
                    from_scaled(f.fill.qty, f.fill.qty_precision)
                    * from_scaled(f.fill.price, f.fill.price_precision)
                    for f in group
                ),
                Decimal(0),
            )
            inst = obs.instrument(symbol) if obs is not None else None
            pp = inst.price_precision if inst is not None else group[0].fill.price_precision
            qp = group[0].fill.qty_precision
            avg = fixed(cost / qty, pp) if qty else "n/a"
            parts.append(f"{symbol} {side} {fixed(qty, qp)} in {len(group)} at avg {avg}")
        n = len(fills)
        text = f"{self.label}: {n} fill{'s' if n != 1 else ''}: " + "; ".join(parts)
        return [notice("fills", "info", text, at_ns, {"count": n})]


def _describe(seen: FillSeen) -> str:
    fill = seen.fill
    qty = fixed(from_scaled(fill.qty, fill.qty_precision), fill.qty_precision)
    price = fixed(from_scaled(fill.price, fill.price_precision), fill.price_precision)
    liquidity = "maker" if fill.liquidity == "m" else "taker"
    fee = f", fee {fill.fee.normalize():f} {fill.fee_asset}" if fill.fee else ""
    who = f"{seen.strategy} " if seen.strategy else ""
    return f"{who}{fill.side} {qty} {fill.symbol} @ {price} ({liquidity}{fee})"
