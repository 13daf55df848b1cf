"""The simulator's own book checksum (``book_stream.SymbolMirror``) against Kraken's worked
examples: the guide https://docs.kraken.com/api/docs/guides/spot-ws-book-v2 (BTC/USD,
3310070434) and the book channel page https://docs.kraken.com/api/docs/websocket-v2/book
(MATIC/USD snapshot 2439117997, then an update, 2114181697). The levels are Kraken's data,
turned into the simulator's scaled ints here."""

from __future__ import annotations

from decimal import Decimal

from bot.sim.book_stream import SymbolMirror

BTC_ASKS = [
    ("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]  # fmt: skip
BTC_BIDS = [
    ("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]  # fmt: skip
MATIC_BIDS = [
    ("0.5666", "4831.75496356"), ("0.5665", "6658.22734739"), ("0.5664", "18724.91513344"),
    ("0.5663", "11563.92544914"), ("0.5662", "14006.65365711"), ("0.5661", "17454.85679807"),
    ("0.566", "18097.1547"), ("0.5659", "33644.89175666"), ("0.5658", "148.3464"),
    ("0.5657", "606.70854372"),
]  # fmt: skip
MATIC_ASKS = [
    ("0.5668", "4410.79769741"), ("0.5669", "4655.40412487"), ("0.567", "49844.89424998"),
    ("0.5671", "24306.41678"), ("0.5672", "29783.25223475"), ("0.5673", "57234.71239278"),
    ("0.5674", "45065.04744"), ("0.5675", "5912.76380354"), ("0.5676", "42514.92434778"),
    ("0.5677", "36304.0847022"),
]  # fmt: skip


def scaled(levels: list[tuple[str, str]], pp: int, qp: int) -> list[tuple[int, int]]:
    return [(int(Decimal(p).scaleb(pp)), int(Decimal(q).scaleb(qp))) for p, q in levels]


def test_btc_usd_worked_example() -> None:
    mirror = SymbolMirror("BTC/USD", scaled(BTC_BIDS, 1, 8), scaled(BTC_ASKS, 1, 8))
    assert mirror.checksum() == 3310070434


def test_matic_usd_snapshot_then_update() -> None:
    mirror = SymbolMirror("MATIC/USD", scaled(MATIC_BIDS, 4, 8), scaled(MATIC_ASKS, 4, 8))
    assert mirror.checksum() == 2439117997
    mirror.update(scaled([("0.5657", "1098.3947558")], 4, 8), [], [10])
    assert mirror.checksum() == 2114181697


def test_only_the_top_ten_count() -> None:
    bids = scaled(BTC_BIDS, 1, 8)
    mirror = SymbolMirror("BTC/USD", [*bids, (400000, 100)], scaled(BTC_ASKS, 1, 8))
    assert mirror.checksum() == 3310070434
