"""Book benchmark: parse → apply → checksum on every frame, side by side with peers.

Five contenders eat the same pre-generated frames (``bench.book_stream``) in one run:

- ``floor``: ``orjson.loads`` of each frame and nothing else (the parse-only floor);
- ``krakenbot``: the fused path, ``bot.market.frames.parse_into(parser, raw, books)``:
  decode, apply to the book and verify the checksum on every frame, each result looked at;
- ``krakenbot-frames``: ``MarketFrames.push(raw)``, the whole path the live feed, ``krakenbot
  replay`` and the backtester share: the fused path plus the books' bookkeeping and one
  ``BookUpdated`` event per frame to a sink that counts them;
- ``krakenbot-parse-apply``: the two-step path, ``Parser.parse`` then ``Book.apply`` of
  each ``BookFrame``, for comparison (same book, same checksums);
- ``python-kraken-sdk``: its ``SpotOrderBookClient.on_message`` fed ``json.loads`` of each
  frame, as its WebSocket connector does (installed with ``pip install -e '.[bench]'``).

Each contender runs ``repeat`` times, interleaved, and the best run counts (the machine is
shared and noisy; the best run is the least disturbed one). Memory is checked by running
krakenbot over the stream twice more and comparing peak RSS growth. Results are one JSON
object with frames/s, µs/frame and the ratios, and ``core``: which core of the book ran,
``"c"`` (``bot.market._bookcore``) or ``"python"`` (not built, or ``KRAKENBOT_PURE_BOOK=1``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench.book_stream import StreamSpec, generate_frames
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import BookFrame, Parser
from bot.market.book import CORE, Book, BookApplied
from bot.market.frames import BookUpdated, MarketEvent, MarketFrames, parse_into

__all__ = ["run_book_bench"]


def _floor(frames: list[bytes]) -> Callable[[], int]:
    loads = orjson.loads

    def run() -> int:
        for raw in frames:
            loads(raw)
        return 0

    return run


def _krakenbot(frames: list[bytes], spec: StreamSpec) -> Callable[[], int]:
    def run() -> int:
        parser = Parser(InstrumentTable([spec.instrument]))
        books = {spec.instrument.symbol: Book(spec.instrument, depth=spec.depth)}
        mismatches = 0
        for raw in frames:
            for event in parse_into(parser, raw, books):
                if type(event) is BookApplied and event.mismatch is not None:
                    mismatches += 1
        return mismatches

    return run


def _krakenbot_frames(frames: list[bytes], spec: StreamSpec) -> Callable[[], int]:
    def run() -> int:
        updated = 0

        def sink(event: MarketEvent) -> None:
            nonlocal updated
            if type(event) is BookUpdated:
                updated += 1

        market = MarketFrames(
            InstrumentTable([spec.instrument]), sink, depth=spec.depth, stats=None
        )
        market.track(spec.instrument.symbol)
        push = market.push
        for raw in frames:
            push(raw)
        return len(frames) - updated  # frames that did not verify

    return run


def _krakenbot_two_step(frames: list[bytes], spec: StreamSpec) -> Callable[[], int]:
    def run() -> int:
        parser = Parser(InstrumentTable([spec.instrument]))
        book = Book(spec.instrument, depth=spec.depth)
        parse = parser.parse
        apply = book.apply
        mismatches = 0
        for raw in frames:
            for event in parse(raw):
                if type(event) is BookFrame and apply(event) is not None:
                    mismatches += 1
        return mismatches

    return run


def _kraken_sdk(frames: list[bytes], spec: StreamSpec) -> Callable[[], int] | None:
    try:
        from kraken.spot import SpotOrderBookClient
    except ImportError:
        return None

    def run() -> int:
        async def feed() -> int:
            client = SpotOrderBookClient(depth=spec.depth, callback=lambda pair, message: None)
            # Seed the precisions it would otherwise fetch over REST (no network here).
            client._SpotOrderBookClient__book[spec.instrument.symbol] = {  # type: ignore[attr-defined]
                "bid": {},
                "ask": {},
                "valid": True,
                "price_decimals": spec.instrument.price_precision,
                "qty_decimals": spec.instrument.qty_precision,
            }
            invalid = 0
            book = client._SpotOrderBookClient__book[spec.instrument.symbol]  # type: ignore[attr-defined]
            loads = json.loads
            on_message = client.on_message
            for raw in frames:
                await on_message(loads(raw))
                if not book["valid"]:
                    invalid += 1
            return invalid

        return asyncio.run(feed())

    return run


def _time(fn: Callable[[], int]) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "note": "shared, noisy machine: compare ratios from the same run, not absolutes",
    }


def run_book_bench(
    frames: int = 100_000, depths: tuple[int, ...] = (10, 1000), repeat: int = 3, seed: int = 42
) -> dict[str, Any]:
    """Run the book benchmark and return its figures (also printed by ``krakenbot bench``)."""
    results: dict[str, Any] = {
        "machine": _machine(),
        "core": CORE,
        "frames": frames,
        "depths": {},
    }
    for depth in depths:
        spec = StreamSpec(frames=frames, depth=depth, seed=seed)
        stream = list(generate_frames(spec))
        contenders: dict[str, Callable[[], int] | None] = {
            "floor": _floor(stream),
            "krakenbot": _krakenbot(stream, spec),
            "krakenbot-frames": _krakenbot_frames(stream, spec),
            "krakenbot-parse-apply": _krakenbot_two_step(stream, spec),
            "python-kraken-sdk": _kraken_sdk(stream, spec),
        }
        best: dict[str, float] = {}
        outcome: dict[str, int] = {}
        for _ in range(repeat):
            for name, fn in contenders.items():
                if fn is None:
                    continue
                elapsed, result = _time(fn)
                best[name] = min(best.get(name, elapsed), elapsed)
                outcome[name] = result
        rss_before = _rss_kib()
        run = contenders["krakenbot"]
        assert run is not None
        for _ in range(2):
            run()
        rss_growth = _rss_kib() - rss_before
        figures: dict[str, Any] = {}
        for name, elapsed in best.items():
            figures[name] = {
                "frames_per_s": round(len(stream) / elapsed),
                "us_per_frame": round(elapsed / len(stream) * 1e6, 3),
            }
        figures["krakenbot"]["checksum_mismatches"] = outcome["krakenbot"]
        figures["krakenbot-frames"]["frames_not_verified"] = outcome["krakenbot-frames"]
        figures["krakenbot-parse-apply"]["checksum_mismatches"] = outcome["krakenbot-parse-apply"]
        figures["krakenbot"]["peak_rss_growth_kib_over_2_more_runs"] = rss_growth
        ratios = {
            "krakenbot_vs_floor": round(best["krakenbot"] / best["floor"], 2),
            "frames_vs_floor": round(best["krakenbot-frames"] / best["floor"], 2),
            "parse_apply_vs_floor": round(best["krakenbot-parse-apply"] / best["floor"], 2),
        }
        if "python-kraken-sdk" in best:
            ratios["krakenbot_speedup_vs_python_kraken_sdk"] = round(
                best["python-kraken-sdk"] / best["krakenbot"], 1
            )
            figures["python-kraken-sdk"]["invalid_book_frames"] = outcome["python-kraken-sdk"]
        results["depths"][str(depth)] = {"figures": figures, "ratios": ratios}
    return results


if __name__ == "__main__":
    print(json.dumps(run_book_bench(), indent=2))
