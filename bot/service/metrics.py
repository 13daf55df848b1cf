"""Every Prometheus metric of the daemon, declared once, in a registry of its own.

This module owns ``FAMILIES`` (the table of every metric: name, kind, help, label names),
``Metrics`` (its own ``CollectorRegistry``, never the global default one) and the small
*sources* that read the daemon's components at scrape time. Two ways in:

* **Pulled at scrape time.** A source is a plain callable returning ``Sample``s (and
  ``HistogramSample``s: a component's own ``bot.core.histogram.Histogram``); the daemon
  registers one per component (``metrics.add_source(feed_source(feed))``). Components keep
  their own plain counters (``Feed.stats``, ``DeadmanSwitch.stats``, ``RiskGate``...), so
  nothing on a hot path knows about metrics. A source that raises is logged and counted
  (``metrics_source_errors``); it never breaks a scrape.
* **Pushed by events.** Fills, refused intents (``bot.strategy.refusals``), finished orders, handler
  latencies and strategies' custom metrics are counted as they happen
  (``metrics.fill(...)``...): one dict update each, no lock (everything runs on the one
  event loop).

``samples()`` is the merged view both ``/metrics`` (``render()``) and the status page read.
Secrets never appear: no label is named like a secret (checked on the table), a custom
metric may not be named like one, and every label value goes through ``bot.core.log.scrub_text``.
Values are floats at this edge only (Prometheus has no other number); the daemon's exact
numbers stay exact. The module never opens a socket (``bot.service.http`` serves it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import metadata
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString

from bot.core.histogram import Histogram
from bot.core.log import get_logger, is_sensitive_key, scrub_text
from bot.execution.orders import OrderState
from bot.execution.risk import TradingState
from bot.strategy import StrategyError
from bot.strategy.runner import RunnerState, check_metric_name

if TYPE_CHECKING:
    from bot.core.supervisor import Supervisor
    from bot.execution.deadman import DeadmanSwitch
    from bot.execution.orders import Fill, Order
    from bot.execution.pnl import PositionBook
    from bot.execution.private_feed import PrivateFeed
    from bot.execution.readiness import ReadinessGate
    from bot.execution.risk import RiskGate
    from bot.execution.venue_ws import KrakenWsVenue
    from bot.kraken.rest import KrakenRestClient
    from bot.market.feed import Feed
    from bot.strategy.runner import StrategyRunner

__all__ = [
    "CONTENT_TYPE",
    "FAMILIES",
    "HANDLER_BUCKETS",
    "NAMESPACE",
    "Family",
    "HistogramSample",
    "Metrics",
    "Sample",
    "Snapshot",
    "SnapshotView",
    "Source",
    "deadman_source",
    "feed_source",
    "orders_source",
    "positions_source",
    "private_feed_source",
    "readiness_source",
    "rest_source",
    "risk_source",
    "runners_source",
    "supervisor_source",
    "ws_orders_source",
]

NAMESPACE: Final = "krakenbot"
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
# Strategy handlers should take microseconds to a few milliseconds (they share the loop).
HANDLER_BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
MAX_CUSTOM_SERIES: Final = 200  # per strategy: a runaway label cannot eat the memory
ACCOUNT_WIDE_PAIR: Final = "account"  # the trading counter's pair-less key

Kind = Literal["counter", "gauge", "histogram"]
log = get_logger(component="metrics")


@dataclass(frozen=True, slots=True)
class Family:
    """One metric: ``name`` without namespace (a counter's ``_total`` is added on output)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


def _f(name: str, kind: Kind, help_: str, *labels: str) -> Family:
    return Family(name, kind, help_, labels)


FAMILIES: Final[tuple[Family, ...]] = (
    _f("info", "gauge", "Always 1; the version is a label", "version"),
    _f("loop_lag_seconds", "gauge", "How late the event loop's latest lag probe woke"),
    _f("loop_lag_max_seconds", "gauge", "The largest loop lag in the recent window"),
    _f("metrics_source_errors", "counter", "Metric sources that raised during a scrape"),
    _f("task_restarts", "counter", "Daemon tasks restarted after they stopped unasked", "task"),
    _f("ready", "gauge", "1 while the readiness gate is open (orders may leave)"),
    _f("readiness_check", "gauge", "1 while the readiness check passes", "check"),
    # feeds: public ("public") and private ("private")
    _f("feed_connected", "gauge", "1 while the feed's WebSocket is open", "feed"),
    _f("feed_frames", "counter", "Frames received", "feed"),
    _f("feed_book_frames", "counter", "Book frames received", "feed"),
    _f("feed_unparsed_frames", "counter", "Frames that could not be parsed", "feed"),
    _f("feed_connects", "counter", "Connections opened", "feed"),
    _f("feed_reconnects", "counter", "Reconnections after a lost connection", "feed"),
    _f("feed_connect_failures", "counter", "Connection attempts that failed", "feed"),
    _f("feed_subscription_failures", "counter", "Subscriptions Kraken refused", "feed"),
    _f("feed_resyncs", "counter", "Book resubscriptions after a checksum mismatch", "feed"),
    _f("feed_frame_age_seconds", "gauge", "Seconds since the feed's last frame (lag)", "feed"),
    _f("feed_ping_rtt_seconds", "gauge", "Latest ping round trip", "feed"),
    _f("private_feed_subscribed", "gauge", "1 while the executions subscription is live"),
    _f("private_feed_token_failures", "counter", "WS tokens that failed or were refused"),
    _f("private_feed_sequence_gaps", "counter", "Gaps in the executions sequence"),
    # the recorder (krakenbot record)
    _f("record_frames", "counter", "Frames written to the recording"),
    _f("record_bytes", "counter", "Compressed bytes written to the recording"),
    _f("record_files", "counter", "Recording files opened"),
    _f("record_gaps", "counter", "Gap markers written", "reason"),
    _f("record_disk_errors", "counter", "Writes that failed (a full disk...)"),
    _f("record_dropped_lines", "counter", "Lines lost while writing was failing"),
    _f("record_writing", "gauge", "1 while the recording is being written"),
    # books
    _f("book_valid", "gauge", "1 while the book is checksum-valid", "symbol"),
    _f("book_checksum_failures", "counter", "Checksum mismatches", "symbol"),
    _f("book_frames", "counter", "Book frames received", "symbol"),
    _f("book_mid", "gauge", "Mid price of a valid book", "symbol"),
    _f("book_spread", "gauge", "Best ask minus best bid of a valid book", "symbol"),
    # orders, fills, rejections
    _f("orders", "gauge", "Tracked orders by state", "state"),
    _f("orders_finished", "counter", "Orders that reached a final state", "state"),
    _f("fills", "counter", "Fills", "strategy", "symbol", "side", "liquidity"),
    _f("fill_volume", "counter", "Filled base quantity", "strategy", "symbol", "side"),
    _f("fill_fees", "counter", "Fees paid, in the fee's asset", "strategy", "asset"),
    _f("rejections", "counter", "Refused intents", "source", "strategy", "action", "reason"),
    _f("risk_accepted", "counter", "Intents the risk gate accepted"),
    _f("risk_state", "gauge", "1 for the bot's trading state", "state"),
    _f("strategy_risk_state", "gauge", "1 for a strategy's trading state", "strategy", "state"),
    # rate limits and the dead-man's switch
    _f("rest_headroom", "gauge", "REST call counter room before Kraken refuses"),
    _f("rest_refusals", "counter", "Calls Kraken refused for the REST call counter"),
    _f("trading_headroom", "gauge", "Trading counter room before Kraken refuses", "pair"),
    _f("deadman_armed", "gauge", "1 while the dead-man's switch is armed"),
    _f("deadman_seconds_to_trigger", "gauge", "Seconds until Kraken cancels every order"),
    _f("deadman_refreshes", "counter", "Successful CancelAllOrdersAfter calls"),
    _f("deadman_failures", "counter", "Failed CancelAllOrdersAfter calls"),
    _f("deadman_lapses", "counter", "Times the switch may have fired"),
    # order entry over the WebSocket (venue.order_entry: websocket)
    _f("order_entry_path", "gauge", "1 for the path a write takes now", "path"),
    _f("order_entry_fallbacks", "counter", "Switches of the writes to REST", "reason"),
    _f("order_entry_returns", "counter", "Switches of the writes back to the WebSocket"),
    _f("ws_order_requests", "counter", "WebSocket order requests", "method", "outcome", "error"),
    _f("ws_order_ack_seconds", "histogram", "WebSocket order request sent to its answer", "method"),
    _f("ws_order_late_answers", "counter", "Answers after the ack timeout (ignored)"),
    _f("ws_order_token_refusals", "counter", "WebSocket writes refused for the token"),
    # strategies
    _f("strategy_state", "gauge", "1 for the strategy runner's state", "strategy", "state"),
    _f("strategy_handler_calls", "counter", "Handler calls", "strategy", "handler"),
    _f("strategy_handler_errors", "counter", "Handler calls that raised", "strategy", "handler"),
    _f("strategy_handler_max_seconds", "gauge", "Slowest handler call", "strategy", "handler"),
    _f("strategy_handler_seconds", "histogram", "Handler latency", "strategy", "handler"),
    _f("strategy_realised_pnl", "gauge", "Realised PnL, fees included", "strategy", "quote"),
    _f("strategy_unrealised_pnl", "gauge", "Unrealised PnL at the marks", "strategy", "quote"),
    _f("strategy_daily_pnl", "gauge", "PnL since the UTC day began", "strategy", "quote"),
    _f("strategy_position", "gauge", "Net position, base units", "strategy", "symbol"),
    _f("strategy_metric", "gauge", "A strategy's own gauge", "strategy", "name", "symbol"),
    _f("strategy_counter", "counter", "A strategy's own counter", "strategy", "name", "symbol"),
    # the trader's view: notifications, the control API, the dashboard's live streams
    _f("notify_sent", "counter", "Notifications delivered", "notifier"),
    _f("notify_dropped", "counter", "Notifications given up on", "notifier", "reason"),
    _f("notify_queued", "gauge", "Notifications waiting to be sent", "notifier"),
    _f("control_calls", "counter", "Control API calls by outcome", "action", "outcome"),
    _f("dashboard_streams", "gauge", "Dashboards connected to the live stream"),
)  # fmt: skip

_BY_NAME: Final = {f.name: f for f in FAMILIES}


class Sample(NamedTuple):
    """One value of family ``name``; ``labels`` are values, in the family's label order."""

    name: str
    value: float
    labels: tuple[str, ...] = ()


class HistogramSample(NamedTuple):
    """One series of histogram family ``name``: a component's own bucket counts."""

    name: str
    labels: tuple[str, ...]
    histogram: Histogram


Source = Callable[[], Iterable[Sample | HistogramSample]]
_Key = tuple[str, tuple[str, ...]]


Snapshot = Mapping[str, Sequence[tuple[tuple[str, ...], float]]]
"""``Metrics.snapshot()``: family name → (label values, value) pairs."""


class SnapshotView:
    """Lookups over a ``Metrics.snapshot()`` (the status page's and the dashboard's)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def series(self, name: str) -> Sequence[tuple[tuple[str, ...], float]]:
        return self.snap.get(name, ())

    def get(self, name: str, *labels: str) -> float | None:
        return next((v for lab, v in self.series(name) if lab == labels), None)

    def keys(self, names: Iterable[str], index: int = 0) -> list[str]:
        """Distinct values of label ``index`` across families ``names``, sorted."""
        return sorted({lab[index] for n in names for lab, _ in self.series(n) if len(lab) > index})

    def where(self, name: str, first: str) -> list[tuple[tuple[str, ...], float]]:
        """Series of ``name`` whose first label is ``first``."""
        return [(lab, v) for lab, v in self.series(name) if lab[:1] == (first,)]

    def state(self, name: str, *labels: str) -> str | None:
        """The ``state`` label of the one-hot ``name`` series set to 1."""
        n = len(labels)
        for lab, v in self.series(name):
            if lab[:n] == labels and v == 1:
                return lab[n]
        return None


class Metrics:
    """The daemon's metrics. See the module docstring."""

    def __init__(
        self,
        *,
        process: bool = True,
        buckets: tuple[float, ...] = HANDLER_BUCKETS,
        version: str | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._sources: list[Source] = []
        self._counters: dict[_Key, float] = {}
        self._gauges: dict[_Key, float] = {}
        self._histograms: dict[tuple[str, ...], Histogram] = {}  # strategy_handler_seconds
        self._custom: dict[str, int] = {}  # strategy -> custom series
        self._buckets = tuple(sorted(buckets))
        self._source_errors = 0
        self._gauges["info", (version or _version(),)] = 1.0
        self.registry.register(_Collector(self))
        if process:  # process_cpu_seconds_total, process_resident_memory_bytes, ...
            ProcessCollector(registry=self.registry)

    # -- sources -----------------------------------------------------------------------

    def add_source(self, source: Source) -> None:
        """Read ``source`` at every scrape (and for the status page)."""
        self._sources.append(source)

    def remove_source(self, source: Source) -> None:
        if source in self._sources:
            self._sources.remove(source)

    # -- pushed by events ----------------------------------------------------------------

    def fill(self, fill: Fill, strategy: str = "") -> None:
        """One of our fills (``strategy``: its owner, ``""`` if none)."""
        counters = self._counters
        key: _Key = ("fills", (strategy, fill.symbol, fill.side, fill.liquidity))
        counters[key] = counters.get(key, 0.0) + 1
        key = ("fill_volume", (strategy, fill.symbol, fill.side))
        counters[key] = counters.get(key, 0.0) + fill.qty / 10**fill.qty_precision
        if fill.fee:
            key = ("fill_fees", (strategy, fill.fee_asset))
            counters[key] = counters.get(key, 0.0) + float(fill.fee)

    def rejection(self, source: str, strategy: str, action: str, reason: str) -> None:
        """A refused place, amend or cancel (``Refusals``' ``on_count``): ``source`` is who
        refused (desk, risk, exchange, engine, intent), ``reason`` a stable code (the risk
        gate's, Kraken's error code, ``not_ready``...), never a free-form message."""
        key = ("rejections", (source, strategy, action, reason))
        self._counters[key] = self._counters.get(key, 0.0) + 1

    def order_finished(self, state: OrderState | str) -> None:
        """An order reached a final state (call once per order)."""
        key = ("orders_finished", (str(state),))
        self._counters[key] = self._counters.get(key, 0.0) + 1

    def observe_handler(self, strategy: str, handler: str, seconds: float) -> None:
        """One handler call took ``seconds``."""
        hist = self._histograms.get((strategy, handler))
        if hist is None:
            hist = self._histograms[strategy, handler] = Histogram(self._buckets)
        hist.observe(seconds)

    def handler_observer(self, strategy: str) -> Callable[[str, float], None]:
        """``StrategyRunner(observe=...)`` for ``strategy``."""
        return lambda handler, seconds: self.observe_handler(strategy, handler, seconds)

    def strategy_gauge(
        self, strategy: str, name: str, value: Decimal | float, symbol: str | None = None
    ) -> None:
        """A strategy's ``ctx.metric(name, value, symbol=...)``."""
        key = self._custom_key("strategy_metric", strategy, name, symbol)
        if key is not None:
            self._gauges[key] = float(value)

    def strategy_count(
        self, strategy: str, name: str, n: int = 1, symbol: str | None = None
    ) -> None:
        """A strategy's ``ctx.count(name, n, symbol=...)``; ``n`` may not be negative."""
        if n < 0:
            raise StrategyError(f"counter {name!r}: a counter only goes up (got {n})")
        key = self._custom_key("strategy_counter", strategy, name, symbol)
        if key is not None:
            self._counters[key] = self._counters.get(key, 0.0) + n

    def _custom_key(self, family: str, strategy: str, name: str, symbol: str | None) -> _Key | None:
        key = (family, (strategy, name, symbol or ""))
        if key in self._gauges or key in self._counters:
            return key
        check_metric_name(name)
        if is_sensitive_key(name):
            raise StrategyError(f"metric name {name!r} looks like a secret's: choose another")
        used = self._custom.get(strategy, 0)
        if used >= MAX_CUSTOM_SERIES:
            if used == MAX_CUSTOM_SERIES:
                log.warning("strategy_metrics_capped", strategy=strategy, max=MAX_CUSTOM_SERIES)
                self._custom[strategy] = used + 1
            return None
        self._custom[strategy] = used + 1
        return key

    # -- reading -------------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        """Every value now: pushed ones, then each source's (counters with one key add up,
        gauges: the last wins). Histograms are not included (``render`` has them)."""
        return self._collect()[0]

    def _collect(self) -> tuple[list[Sample], list[HistogramSample]]:
        """``samples()``, and every histogram series (the handlers', then the sources')."""
        counters = dict(self._counters)
        gauges = dict(self._gauges)
        hists = [
            HistogramSample("strategy_handler_seconds", key, hist)
            for key, hist in self._histograms.items()
        ]
        for source in tuple(self._sources):
            try:
                produced = list(source())
            except Exception:  # a component's bug must not take /metrics down with it
                self._source_errors += 1
                log.exception("metrics_source_failed", source=_name_of(source))
                continue
            for sample in produced:
                family = _BY_NAME.get(sample.name)
                is_hist = isinstance(sample, HistogramSample)
                if family is None or (family.kind == "histogram") != is_hist:
                    problem = f"unknown metric family {sample.name!r}"
                elif len(sample.labels) != len(family.labels):
                    problem = f"{sample.name}: labels {family.labels}, got {sample.labels}"
                elif isinstance(sample, HistogramSample):
                    hists.append(sample)
                    continue
                else:
                    key = (sample.name, sample.labels)
                    if family.kind == "counter":
                        counters[key] = counters.get(key, 0.0) + sample.value
                    else:
                        gauges[key] = sample.value
                    continue
                self._source_errors += 1
                log.error("metrics_bad_sample", source=_name_of(source), problem=problem)
        counters["metrics_source_errors", ()] = float(self._source_errors)
        out = [Sample(name, value, labels) for (name, labels), value in gauges.items()]
        out += (Sample(name, value, labels) for (name, labels), value in counters.items())
        return out, hists

    def snapshot(self) -> dict[str, list[tuple[tuple[str, ...], float]]]:
        """``samples()`` by family name, label values scrubbed (the status page's input)."""
        out: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for sample in self.samples():
            labels = tuple(scrub_text(v) for v in sample.labels)
            out.setdefault(sample.name, []).append((labels, sample.value))
        return out

    def handler_latency(self) -> dict[tuple[str, ...], tuple[int, float]]:
        """``(strategy, handler)`` → ``(calls observed, total seconds)``."""
        return {k: (h.count, h.total) for k, h in self._histograms.items()}

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The registry's exposition and its content type, in the format an ``Accept``
        header asks for (Prometheus text 0.0.4 by default; OpenMetrics when asked)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    def _families(self) -> Iterator[Metric]:
        samples, hists = self._collect()
        by_name: dict[str, list[Sample]] = {}
        for sample in samples:
            by_name.setdefault(sample.name, []).append(sample)
        for family in FAMILIES:
            full = f"{NAMESPACE}_{family.name}"
            labels = list(family.labels)
            metric: CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
            if family.kind == "histogram":
                metric = HistogramMetricFamily(full, family.help, labels=labels)
                for h in hists:
                    if h.name == family.name:
                        scrubbed = [scrub_text(v) for v in h.labels]
                        metric.add_metric(scrubbed, _buckets(h.histogram), h.histogram.total)
                yield metric
                continue
            if family.kind == "counter":
                metric = CounterMetricFamily(full, family.help, labels=labels)
            else:
                metric = GaugeMetricFamily(full, family.help, labels=labels)
            for sample in by_name.get(family.name, ()):
                metric.add_metric([scrub_text(v) for v in sample.labels], sample.value)
            yield metric


class _Collector:
    """The registry's one collector: ``Metrics`` read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return [Metric(f"{NAMESPACE}_{f.name}", f.help, f.kind) for f in FAMILIES]

    def collect(self) -> Iterator[Metric]:
        return self._metrics._families()


def _version() -> str:
    try:
        return metadata.version("krakenbot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _name_of(source: Source) -> str:
    return getattr(source, "__qualname__", None) or type(source).__name__


def _buckets(hist: Histogram) -> list[tuple[str, float]]:
    """``le`` bound → cumulative count, as ``HistogramMetricFamily`` takes them."""
    bounds = (*map(floatToGoString, hist.bounds), "+Inf")
    return [(le, float(n)) for le, n in zip(bounds, hist.cumulative(), strict=True)]


def _flag(ok: bool) -> float:
    return 1.0 if ok else 0.0


# --------------------------------------------------------------------------- sources


def feed_source(feed: Feed, name: str = "public") -> Source:
    """The public feed: connection, frames, lag, reconnects; each book's validity."""

    def read() -> Iterator[Sample]:
        s, f = feed.stats, (name,)
        yield Sample("feed_connected", _flag(feed.connected), f)
        yield Sample("feed_frames", s.frames, f)
        yield Sample("feed_book_frames", s.book_frames, f)
        yield Sample("feed_unparsed_frames", s.unparsed, f)
        yield Sample("feed_connects", s.connects, f)
        yield Sample("feed_reconnects", s.reconnects, f)
        yield Sample("feed_connect_failures", s.connect_failures, f)
        yield Sample("feed_subscription_failures", s.subscription_failures, f)
        yield Sample("feed_resyncs", s.resyncs, f)
        age = feed.frame_age_s()
        if age is not None:
            yield Sample("feed_frame_age_seconds", age, f)
        if s.ping_rtt_s is not None:
            yield Sample("feed_ping_rtt_seconds", s.ping_rtt_s, f)
        failures = s.checksum_failures
        for symbol, book in feed.books.items():
            yield Sample("book_valid", _flag(book.valid), (symbol,))
            yield Sample("book_frames", s.book_frames_by_symbol.get(symbol, 0), (symbol,))
            if symbol not in failures:
                yield Sample("book_checksum_failures", 0, (symbol,))
            mid, spread = (book.mid(), book.spread()) if book.valid else (None, None)
            if mid is not None and spread is not None:
                yield Sample("book_mid", float(mid), (symbol,))
                precision = book.instrument.price_precision
                yield Sample("book_spread", spread / 10**precision, (symbol,))
        for symbol, n in failures.items():
            yield Sample("book_checksum_failures", n, (symbol,))

    return read


def private_feed_source(feed: PrivateFeed, name: str = "private") -> Source:
    """The private (executions) feed: connection, subscription, frames, lag, reconnects."""

    def read() -> Iterator[Sample]:
        s, f = feed.stats, (name,)
        yield Sample("feed_connected", _flag(feed.connected), f)
        yield Sample("private_feed_subscribed", _flag(feed.subscribed))
        yield Sample("feed_frames", s.frames, f)
        yield Sample("feed_unparsed_frames", s.unparsed, f)
        yield Sample("feed_connects", s.connects, f)
        yield Sample("feed_reconnects", s.reconnects, f)
        yield Sample("feed_connect_failures", s.connect_failures, f)
        yield Sample("private_feed_token_failures", s.token_failures)
        yield Sample("private_feed_sequence_gaps", s.sequence_gaps)
        age = feed.frame_age_s()
        if age is not None:
            yield Sample("feed_frame_age_seconds", age, f)

    return read


def readiness_source(gate: ReadinessGate) -> Source:
    """The readiness gate: open or not, and each check (what an alert on "not ready for
    N minutes" reads)."""

    def read() -> Iterator[Sample]:
        yield Sample("ready", _flag(gate.is_open))
        for name in gate.names:
            yield Sample("readiness_check", _flag(gate.passes((name,))), (name,))

    return read


def deadman_source(switch: DeadmanSwitch) -> Source:
    """The dead-man's switch: armed, time to trigger, refreshes, failures, lapses."""

    def read() -> Iterator[Sample]:
        s = switch.stats
        yield Sample("deadman_armed", _flag(switch.armed))
        left = switch.seconds_to_trigger()
        if left is not None:
            yield Sample("deadman_seconds_to_trigger", left)
        yield Sample("deadman_refreshes", s.refreshes)
        yield Sample("deadman_failures", s.failures)
        yield Sample("deadman_lapses", s.lapses)

    return read


def supervisor_source(supervisor: Supervisor) -> Source:
    """The daemon's supervised tasks: how often each stopped unasked and was restarted."""

    def read() -> Iterator[Sample]:
        for name, stats in supervisor.stats.items():
            yield Sample("task_restarts", stats.restarts, (name,))

    return read


def rest_source(rest: KrakenRestClient) -> Source:
    """Rate-limit headroom: the REST call counter and each pair's trading counter."""

    def read() -> Iterator[Sample]:
        yield Sample("rest_headroom", rest.rest_headroom())
        yield Sample("rest_refusals", rest.rest_counter.refusals)
        for pair, room in rest.trading_headrooms().items():
            yield Sample("trading_headroom", room, (pair or ACCOUNT_WIDE_PAIR,))

    return read


def risk_source(risk: RiskGate, strategies: Iterable[str] = ()) -> Source:
    """The risk gate: the bot's and each named strategy's state, and what it accepted (its
    refusals reach ``rejections`` through the desk's ``Refusals``, with the others)."""
    names = tuple(strategies)

    def read() -> Iterator[Sample]:
        state = risk.state
        for s in TradingState:
            yield Sample("risk_state", _flag(s is state), (s.value,))
        for strategy in names:
            own = risk.strategy_state(strategy)
            for s in TradingState:
                yield Sample("strategy_risk_state", _flag(s is own), (strategy, s.value))
        yield Sample("risk_accepted", risk.accepted)

    return read


def positions_source(book: PositionBook) -> Source:
    """PnL (realised, unrealised, today's) per strategy and quote; positions per symbol."""

    def read() -> Iterator[Sample]:
        for strategy in book.strategies():
            quotes: dict[str, None] = {}
            for pos in book.positions(strategy):
                quotes[pos.quote] = None
                yield Sample("strategy_position", float(pos.qty), (strategy, pos.symbol))
            for quote in quotes:
                labels = (strategy, quote)
                yield Sample("strategy_realised_pnl", float(book.realised(quote, strategy)), labels)
                unrealised = float(book.unrealised(quote, strategy))
                yield Sample("strategy_unrealised_pnl", unrealised, labels)
                yield Sample("strategy_daily_pnl", float(book.daily_pnl(quote, strategy)), labels)

    return read


def runners_source(runners: Iterable[StrategyRunner]) -> Source:
    """Each strategy runner: its state, and each handler's calls, errors and slowest call.
    ``runners`` is read again at every scrape (pass the daemon's list)."""

    def read() -> Iterator[Sample]:
        for runner in runners:
            name = runner.name
            for s in RunnerState:
                yield Sample("strategy_state", _flag(s is runner.state), (name, s.value))
            for handler, st in runner.stats.items():
                labels = (name, handler)
                yield Sample("strategy_handler_calls", st.calls, labels)
                yield Sample("strategy_handler_errors", st.errors, labels)
                if st.calls:
                    yield Sample("strategy_handler_max_seconds", st.max_s, labels)

    return read


def orders_source(orders: Callable[[], Iterable[Order]]) -> Source:
    """Orders by state (every state, zeros too) from ``orders()``, e.g. the engine's
    ``open_orders``."""

    def read() -> Iterator[Sample]:
        counts = dict.fromkeys(OrderState, 0)
        for order in orders():
            counts[order.state] += 1
        for state, n in counts.items():
            yield Sample("orders", n, (state.value,))

    return read


def ws_orders_source(venue: KrakenWsVenue) -> Source:
    """The WebSocket order entry (``venue.order_entry: websocket``): the path writes take
    now, its switches, each method's requests by outcome and ack latency, late answers and
    token refusals (``bot.execution.ws_order_stats``)."""

    def read() -> Iterator[Sample | HistogramSample]:
        s = venue.ws.stats
        over_ws = venue.ws.ready
        yield Sample("order_entry_path", _flag(over_ws), ("websocket",))
        yield Sample("order_entry_path", _flag(not over_ws), ("rest",))
        for reason, n in s.to_rest.items():
            yield Sample("order_entry_fallbacks", n, (reason,))
        yield Sample("order_entry_returns", s.to_websocket)
        yield Sample("ws_order_late_answers", s.late_answers)
        yield Sample("ws_order_token_refusals", s.token_refusals)
        for method, st in s.methods.items():
            for outcome, error, n in st.outcomes():
                yield Sample("ws_order_requests", n, (method, outcome, error))
            yield HistogramSample("ws_order_ack_seconds", (method,), st.ack)

    return read
