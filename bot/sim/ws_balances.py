"""The private ``balances`` channel's data, from the simulator's ledger (pure).

https://docs.kraken.com/api/docs/websocket-v2/balances: the snapshot lists each asset the
account holds, ``{"asset", "asset_class": "currency", "balance", "wallets": [{"type":
"spot", "id": "main", "balance"}]}`` (the simulator has one spot wallet per asset); then "an
update will be streamed on each completed transaction", one ledger entry per asset it moved:
``{"ledger_id", "ref_id", "timestamp", "type", "asset", "asset_class", "category",
"wallet_type", "wallet_id", "amount", "fee", "balance"}``. The simulator's transactions
are trades (its accounts are funded once, at start), so each fill makes two entries, base
and quote, with ``type`` and ``category`` ``trade`` and ``ref_id`` the fill's trade id. As
in Kraken's ledgers, ``balance`` is the total after the entry: the one before, plus
``amount``, minus ``fee``.

Numbers are exact: every amount is the ledger's own value, printed to the asset's
precision (USD 4 decimals, BTC 10) or further where a fill's cost needs more, never
rounded. Asset names are WS v2's (``BTC``, ``USD``). Ledger ids are derived from the trade
id and the asset, so every subscriber sees the same ids and the venue's seeded id stream
is left alone.

This module owns that data; ``ws_private`` frames and sends it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from bot.kraken.instruments import Instrument
from bot.sim.matching import Fill
from bot.sim.pairs import ASSET_PRECISION
from bot.sim.ws_common import rfc3339

__all__ = ["balance_assets", "ledger_entries", "ledger_id"]

_DEFAULT_PRECISION: Final = 8


def exact(value: Decimal, asset: str) -> Decimal:
    """``value`` to the asset's precision, or to as many places as it needs."""
    places = Decimal(1).scaleb(-ASSET_PRECISION.get(asset, _DEFAULT_PRECISION))
    fixed = value.quantize(places)
    return fixed if fixed == value else value.normalize()


def balance_assets(totals: Mapping[str, Decimal]) -> list[dict[str, Any]]:
    """The snapshot's data: one entry per asset, its total in the one spot wallet."""
    out = []
    for asset, total in totals.items():
        amount = exact(total, asset)
        out.append(
            {
                "asset": asset,
                "asset_class": "currency",
                "balance": amount,
                "wallets": [{"type": "spot", "id": "main", "balance": amount}],
            }
        )
    return out


def ledger_id(ref_id: str, asset: str) -> str:
    """A Kraken-looking ledger id (``LXXXXX-XXXXX-XXXXXX``), the same for every subscriber."""
    digest = hashlib.blake2b(f"{ref_id}:{asset}".encode(), digest_size=10).digest()
    s = base64.b32encode(digest).decode()
    return f"L{s[:5]}-{s[5:10]}-{s[10:16]}"


def ledger_entries(
    fills: Iterable[tuple[Fill, Instrument]], totals: Mapping[str, Decimal]
) -> list[dict[str, Any]]:
    """The ledger entries of ``fills`` (in order), each fill's base then quote, with the
    running ``balance`` worked back from ``totals``, the account's totals after them all."""
    rows: list[tuple[Fill, str, Decimal, Decimal]] = []  # fill, asset, amount, fee
    for fill, inst in fills:
        sign = 1 if fill.side == "buy" else -1
        qty = Decimal(fill.qty).scaleb(-inst.qty_precision)
        for asset, amount in ((inst.base, sign * qty), (inst.quote, -sign * fill.cost)):
            fee = fill.fee if fill.fee_asset == asset else Decimal(0)
            rows.append((fill, asset, amount, fee))
    running = {asset: Decimal(total) for asset, total in totals.items()}
    after: list[Decimal] = []
    for _, asset, amount, fee in reversed(rows):
        balance = running.get(asset, Decimal(0))
        after.append(balance)
        running[asset] = balance - amount + fee
    after.reverse()
    return [
        {
            "ledger_id": ledger_id(fill.exec_id, asset),
            "ref_id": fill.exec_id,
            "timestamp": rfc3339(fill.timestamp),
            "type": "trade",
            "asset": asset,
            "asset_class": "currency",
            "category": "trade",
            "wallet_type": "spot",
            "wallet_id": "main",
            "amount": exact(amount, asset),
            "fee": exact(fee, asset),
            "balance": exact(balance, asset),
        }
        for (fill, asset, amount, fee), balance in zip(rows, after, strict=True)
    ]
