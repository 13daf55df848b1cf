"""Loading a config: the file read, the YAML read, secrets resolved, cross-checks, the schema.

Every problem from every stage is collected, sorted by line and raised together as one
``ConfigError``; a loaded ``Config`` keeps its ``SourceMap``, and each strategy the place of
its ``params`` (for ``validate_params``). It never opens a socket, never imports a strategy
and never logs a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from bot.config.checks import cross_checks
from bot.config.locations import Where, located_problems
from bot.config.reader import Reader
from bot.config.schema import Config
from bot.config.secrets import CredentialResolver
from bot.core.errors import ConfigError

__all__ = ["default_config_path", "load_config", "load_config_text"]


def load_config_text(
    text: str, source_name: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    """Parse and validate one YAML document; raise ``ConfigError`` listing every problem."""
    reader = Reader(source_name, os.environ if env is None else env)
    data = reader.read(text)
    resolver = CredentialResolver(reader)
    resolver.credentials(data)
    resolver.futures_credentials(data)
    resolver.env_secrets(data)
    cross_checks(reader, data)
    problems = list(reader.problems)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        skip = frozenset(reader.bad_paths)
        problems += located_problems(err, Where(reader.smap), Config, skip)
    if problems or config is None:
        ordered = sorted(enumerate(problems), key=lambda item: (item[1][0], item[0]))
        raise ConfigError([text for _, (_, text) in ordered])
    config._source_map = reader.smap
    for index, strategy in enumerate(config.strategies):
        strategy._where = Where(reader.smap, ("strategies", index, "params"))
    return config


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Load the config file at ``path`` (errors are named after ``path`` as given)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except OSError as exc:  # a directory, no permission, ...
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    return load_config_text(text, source, env)


def default_config_path() -> Path:
    """The shipped ``config/default.yaml``.

    Looked for next to the source tree (a checkout or an editable install), then as package
    data (``bot/data/default.yaml``), then under the working directory. When none exists the
    first candidate is returned, so the error names a sensible path.
    """
    here = Path(__file__).resolve().parent.parent  # the bot package (this is bot/config/...)
    candidates = (
        here.parent / "config" / "default.yaml",
        here / "data" / "default.yaml",
        Path.cwd() / "config" / "default.yaml",
    )
    return next((c for c in candidates if c.is_file()), candidates[0])
