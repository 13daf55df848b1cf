"""``python -m bot.sim.futures``: the Kraken Futures simulator as a standalone server (the
command is ``cli``'s; ``krakenbot sim --futures`` serves the same venue)."""

from __future__ import annotations

import sys

from bot.sim.futures.cli import main

if __name__ == "__main__":
    sys.exit(main())
