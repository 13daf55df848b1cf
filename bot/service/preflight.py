"""What ``krakenbot run`` checks before it trades without the exchange: one function.

``load_deployment(path)`` reads the config (YAML, schema, environment, secrets, bounds:
``bot.config``) and loads every enabled strategy (imported, checked to be a ``Strategy``
with plain handlers, its params validated against its own class: ``bot.strategy.loader``),
raising one ``ConfigError`` with every problem. ``krakenbot run`` and ``krakenbot
check-config`` both call it, so check-config cannot say ``ok`` to a file that run refuses
before it starts. What needs the exchange or the host (the API key's permissions, the
store's owner, the ports) the daemon checks as it starts, before any order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config, load_config
from bot.strategy.loader import LoadedStrategy, load_strategies

__all__ = ["Deployment", "load_deployment"]


@dataclass(frozen=True, slots=True)
class Deployment:
    """A config file that passed every check, and its strategies, loaded."""

    path: Path
    config: Config
    strategies: list[LoadedStrategy]


def load_deployment(
    path: str | Path, *, on_config: Callable[[Config], None] | None = None
) -> Deployment:
    """Load and check the deployment at ``path``; ``ConfigError`` lists every problem.

    ``on_config`` runs once the config is valid, before any strategy is imported (``run``
    configures logging there, so a strategy's import-time log lines are formatted)."""
    config = load_config(path)
    if on_config is not None:
        on_config(config)
    return Deployment(Path(path), config, load_strategies(config.strategies))
