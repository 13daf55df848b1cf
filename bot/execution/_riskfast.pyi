"""``RiskGate.accept_place``'s common case in C (``bot/execution/_riskfast.c``)."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

def accept_place(
    gate: Any,
    strategy: str,
    inst: Any,
    side: str,
    qty: int,
    price: int | None,
    mids: Mapping[str, Decimal],
    open_orders: Mapping[str, int],
    open_total: int | None,
    /,
) -> bool: ...
def bind(active: object, decimal_type: type[Decimal], window_s: float, /) -> None: ...
