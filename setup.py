"""Build configuration for the optional C cores: the order book's (``bot.market._bookcore``)
and the risk gate's fast accept (``bot.execution._riskfast``).

Everything else about the package is in ``pyproject.toml``. The extension is one module built
from the C files ``bot/market/_bookcore*.c`` (``_bookcore.c`` is the module and its overview;
the others are named for their concept) and their internal header ``_bookcore.h``, listed in
``depends`` so that an edit to it rebuilds them and the sdist carries it. The extension is
optional: without a C compiler the install still succeeds and ``bot.market.book`` runs its
pure-Python core (the same rules, slower); ``tests/unit/test_bookcore.py`` fails loudly
if the extension is missing while ``KRAKENBOT_PURE_BOOK`` is not set.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "bot.market._bookcore",
            [
                "bot/market/_bookcore.c",
                "bot/market/_bookcore_apply.c",
                "bot/market/_bookcore_crc32.c",
                "bot/market/_bookcore_keys.c",
                "bot/market/_bookcore_state.c",
                "bot/market/_bookcore_view.c",
                "bot/market/_bookcore_wire.c",
            ],
            depends=["bot/market/_bookcore.h"],
            optional=True,
            # No FMA contraction: the exactness test must round like Python's floats.
            # Hidden visibility: the files share their functions with one another, and the
            # module exports PyInit__bookcore alone.
            extra_compile_args=[
                "-O2",
                "-ffp-contract=off",
                "-fvisibility=hidden",
                "-Wall",
                "-Wextra",
            ],
            libraries=["m"],
        ),
        # ``RiskGate.accept_place`` in C (bot/execution/risk.py is the reference and the
        # fallback when it is not built).
        Extension(
            "bot.execution._riskfast",
            ["bot/execution/_riskfast.c"],
            optional=True,
            extra_compile_args=["-O2", "-fvisibility=hidden", "-Wall", "-Wextra"],
        ),
    ]
)
