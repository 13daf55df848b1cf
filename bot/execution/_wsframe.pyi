"""Typed stub of the C ``add_order`` frame (``bot/execution/_wsframe.c`` documents it)."""

from collections.abc import Callable
from typing import Any

from bot.execution.orders import OrderTerms
from bot.kraken.instruments import Instrument

class AddOrderFrames:
    """``bot.execution.ws_requests.PyAddOrderFrames`` in C."""

    def __init__(self, limit: int = 256) -> None: ...
    def __len__(self) -> int: ...
    def __call__(
        self, order: OrderTerms, instrument: Instrument, token: str, req_id: int
    ) -> bytes: ...

def _bind(
    template: Callable[..., Any],
    general: Callable[..., bytes],
    format_scaled: Callable[[int, int], str],
    /,
) -> None: ...
