"""``python -m bot``: the same as the ``krakenbot`` command."""

from bot.cli import main

raise SystemExit(main())
