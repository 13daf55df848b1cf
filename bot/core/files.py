"""Whole-or-nothing file writes: a reader sees the old file or the new one, never half.

``write_atomic`` writes to a temporary file beside the target (same directory, so the
rename stays on one file system) and renames it into place with ``os.replace``, which
POSIX makes atomic. If anything fails on the way (a full disk, text that cannot be
encoded, an interrupt), the temporary file is removed and the old file is left as it was.
The reports of ``krakenbot backtest``, ``krakenbot report --out`` and ``krakenbot
optimize`` are written this way.
It does not fsync: a report can be written again; a crash of the machine itself may lose
the newest one (the nonce floor, which must survive that, fsyncs on its own).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (module docstring)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
