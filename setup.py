"""Build configuration for the optional C extensions: the order book's core
(``bot.market._bookcore``) and the WebSocket ``add_order`` frame (``bot.execution._wsframe``).

Everything else about the package is in ``pyproject.toml``. The book's extension is one
module built from the C files ``bot/market/_bookcore*.c`` (``_bookcore.c`` is the module and
its overview; the others are named for their concept) and their internal header
``_bookcore.h``, listed in ``depends`` so that an edit to it rebuilds them and the sdist
carries it. The extension is
optional: without a C compiler the install still succeeds and ``bot.market.book`` runs its
pure-Python core (the same rules, slower); ``tests/unit/test_bookcore.py`` fails loudly
if the extension is missing while ``KRAKENBOT_PURE_BOOK`` is not set. The frame's extension
is one file, ``bot/execution/_wsframe.c``, optional in the same way: without it
``bot.execution.ws_requests`` writes the frame in Python (``PyAddOrderFrames``, the
reference), and ``tests/unit/test_wsframe.py`` fails loudly if it is missing while
``KRAKENBOT_PURE_WSFRAME`` is not set. Both are built with the same flags.
"""

from setuptools import Extension, setup

# No FMA contraction: the book's exactness test must round like Python's floats.
# Hidden visibility: the book's files share their functions with one another, and each
# module exports its PyInit_ function alone.
COMPILE_ARGS = ["-O2", "-ffp-contract=off", "-fvisibility=hidden", "-Wall", "-Wextra"]

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
            extra_compile_args=COMPILE_ARGS,
            libraries=["m"],
        ),
        Extension(
            "bot.execution._wsframe",
            ["bot/execution/_wsframe.c"],
            optional=True,
            extra_compile_args=COMPILE_ARGS,
        ),
    ]
)
