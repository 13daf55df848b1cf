"""The strategy plugin API and what runs it: the public types (``api``, re-exported here, so
``from bot.strategy import Strategy, OrderState, Side, ...`` is all a strategy needs), the
context a strategy acts through (``context``) and the desk the strategies share (``desk``:
``tasks``, ``handles``, ``marks``, ``pnl_lines``, ``router``, ``refusals``), the runner,
the loader and the test harness (``testing``). ``PreparedOrder`` (``prepared``) is the same
order placed at a new price per tick, its fixed parts checked once.
"""

from bot.strategy.api import (
    HANDLERS,
    BookSnapshot,
    Context,
    DerivativesPosition,
    FillEvent,
    InstrumentInfo,
    InvalidIntent,
    MarginInfo,
    OrderHandle,
    OrderState,
    OrderType,
    Params,
    PriceLevel,
    Side,
    Strategy,
    StrategyError,
    TickerEvent,
    TimeInForce,
    TradeEvent,
    ceil_price,
    check_price,
    check_qty,
    checked_amend,
    checked_order,
    floor_price,
    floor_qty,
    params_class_of,
)
from bot.strategy.batch import OrderBatch
from bot.strategy.prepared import PreparedOrder

__all__ = [
    "HANDLERS",
    "BookSnapshot",
    "Context",
    "DerivativesPosition",
    "FillEvent",
    "InstrumentInfo",
    "InvalidIntent",
    "MarginInfo",
    "OrderBatch",
    "OrderHandle",
    "OrderState",
    "OrderType",
    "Params",
    "PreparedOrder",
    "PriceLevel",
    "Side",
    "Strategy",
    "StrategyError",
    "TickerEvent",
    "TimeInForce",
    "TradeEvent",
    "ceil_price",
    "check_price",
    "check_qty",
    "checked_amend",
    "checked_order",
    "floor_price",
    "floor_qty",
    "params_class_of",
]
