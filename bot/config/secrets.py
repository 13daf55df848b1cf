"""Secrets: the API key and secret, from the environment or a file, never from the YAML.

``CredentialResolver`` turns the raw ``credentials`` mapping into ``Secret`` values (which
the log scrubs): ``api_key_env`` / ``api_secret_env`` name environment variables,
``api_key_file`` / ``api_secret_file`` files; a literal secret in the file (or any key that
looks like one) is refused, and an API secret that is not base64 is refused without
echoing it. Every problem is located through the reader, never showing a value.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any, Final

from bot.config.locations import HIDDEN_FIELDS, KeyPath
from bot.config.reader import Reader
from bot.config.schema import ENV_NAME_RE
from bot.core.log import Secret

__all__ = ["MIN_TOKEN_CHARS", "CredentialResolver"]

MIN_TOKEN_CHARS: Final = 16
"""The shortest control API token accepted (``openssl rand -hex 32`` makes 64)."""
_CREDENTIAL_KEYS: Final = {f"api_{k}_{s}" for k in ("key", "secret") for s in ("env", "file")}
_SECRETISH: Final = re.compile(r"key|secret|token|passw|private|otp|sign", re.IGNORECASE)


class CredentialResolver:
    """Resolves the raw ``credentials`` mapping into ``Secret`` values, in place."""

    def __init__(self, reader: Reader) -> None:
        self.reader, self.env = reader, reader.env

    def credentials(self, data: dict[str, Any]) -> None:
        creds = data.get("credentials")
        if not isinstance(creds, dict):
            return
        for key in list(creds):
            if key not in _CREDENTIAL_KEYS and key not in HIDDEN_FIELDS and _SECRETISH.search(key):
                creds.pop(key)
                self._literal(("credentials", key))
        for name in ("api_key", "api_secret"):
            creds[name] = Secret(self._one_secret(creds, name))  # registered for log scrubbing

    def futures_credentials(self, data: dict[str, Any]) -> None:
        """``futures.credentials``: the Futures key pair, resolved as ``credentials`` is."""
        futures = data.get("futures")
        creds = futures.get("credentials") if isinstance(futures, dict) else None
        if not isinstance(creds, dict):
            return
        root: KeyPath = ("futures", "credentials")
        for key in list(creds):
            if key not in _CREDENTIAL_KEYS and key not in HIDDEN_FIELDS and _SECRETISH.search(key):
                creds.pop(key)
                self._literal((*root, key))
        for name in ("api_key", "api_secret"):
            creds[name] = Secret(self._one_secret(creds, name, root))

    def env_secrets(self, data: dict[str, Any]) -> None:
        """``http.control_token_env`` and each notifier's ``url_env`` / ``token_env``: the
        environment variables they name, resolved into ``Secret`` values (a literal value
        in the YAML is refused, as an API key is); each notifier's keys for its kind."""
        http = data.get("http")
        if isinstance(http, dict):
            self._env_secret(http, ("http",), "control_token", min_chars=MIN_TOKEN_CHARS)
        notify = data.get("notify")
        listed = notify.get("notifiers") if isinstance(notify, dict) else None
        for index, item in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(item, dict):
                self._notifier(item, ("notify", "notifiers", index))

    def _notifier(self, item: dict[str, Any], path: KeyPath) -> None:
        kind = item.get("kind")
        if isinstance(item.get("chat_id"), int) and not isinstance(item["chat_id"], bool):
            item["chat_id"] = str(item["chat_id"])  # Telegram's ids are numbers in YAML
        own = {"webhook": ("url_env", "format"), "telegram": ("token_env", "chat_id", "api_url")}
        for other, keys in own.items():
            for key in keys:
                if kind in own and kind != other and key in item:
                    self.reader.problem((*path, key), f"only for kind {other}", key=True)
        if kind == "webhook":
            self._env_secret(item, path, "url", required=True, url=True)
        elif kind == "telegram":
            self._env_secret(item, path, "token", required=True)
            if item.get("chat_id") is None:
                self.reader.problem(path, "chat_id: required for kind telegram")

    def _env_secret(
        self,
        section: dict[str, Any],
        path: KeyPath,
        name: str,
        *,
        required: bool = False,
        min_chars: int = 1,
        url: bool = False,
    ) -> None:
        """``section[name]``: a ``Secret`` from the variable ``section[name + "_env"]``
        names; its value is never echoed in a problem."""
        reader = self.reader
        if name in section:
            section.pop(name)
            message = f"a literal secret is not allowed in the config file: set {name}_env"
            reader.problem((*path, name), message, key=True)
            reader.bad_paths.add((*path, name))
            return
        var = section.get(f"{name}_env")
        where: KeyPath = (*path, f"{name}_env")
        if var is None:
            if required:
                reader.problem(path, f"{name}_env: required (the environment variable to read)")
            return
        if not isinstance(var, str):
            return  # pydantic says it is not a variable name
        value = self._from_env(where, var)
        if not value:
            return
        if len(value) < min_chars:
            message = f"${var} is shorter than {min_chars} characters: use a long random value"
            reader.problem(where, message)
            return
        if url and not re.fullmatch(r"https?://[^/?#\s]+\S*", value):
            reader.problem(where, f"${var} is not an http(s):// URL")
            return
        section[name] = Secret(value)

    def _literal(self, path: KeyPath) -> None:
        name = str(path[-1])
        self.reader.problem(
            path,
            "a literal secret is not allowed in the config file: name an environment variable"
            f" with {name}_env (or a file with {name}_file) instead",
            key=True,
        )
        self.reader.bad_paths.add(path)

    def _one_secret(
        self, creds: dict[str, Any], name: str, root: KeyPath = ("credentials",)
    ) -> str:
        path: KeyPath = (*root, name)
        if name in creds:
            literal = creds.pop(name)
            var = self.reader.whole_refs.get(path)
            if var is not None and literal is not None:  # `api_key: ${VAR}`: from the environment
                return self._checked(name, path, f"${var}", self._from_env(path, var))
            if path not in self.reader.bad_paths:
                self._literal(path)
            return ""
        env_name, file_name = creds.get(f"{name}_env"), creds.get(f"{name}_file")
        if env_name is not None and file_name is not None:
            message = f"set either {name}_env or {name}_file, not both"
            self.reader.problem((*root, f"{name}_file"), message)
            return ""
        if isinstance(env_name, str):
            where: KeyPath = (*root, f"{name}_env")
            return self._checked(name, where, f"${env_name}", self._from_env(where, env_name))
        if isinstance(file_name, str):
            where = (*root, f"{name}_file")
            return self._checked(name, where, repr(file_name), self._from_file(where, file_name))
        if env_name is None and file_name is None:
            message = f"{name}: missing (set {name}_env or {name}_file)"
            self.reader.problem(root, message)
        return ""  # a wrong type: pydantic reports it

    def _checked(self, name: str, path: KeyPath, source: str, value: str) -> str:
        """``value``, or "" with a problem if it is a secret Kraken could not have issued:
        API secrets are base64 (the signer decodes them; ``run`` would stop there)."""
        if name != "api_secret" or not value:
            return value
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if not decoded:  # never echo the value, nor any part of it
            self.reader.problem(path, f"the API secret in {source} is not valid base64")
            return ""
        return value

    def _from_env(self, path: KeyPath, var: str) -> str:
        if not re.fullmatch(ENV_NAME_RE, var):
            return ""  # pydantic says it is not a variable name, without echoing it
        value = self.env.get(var)
        if not value:
            state = "is not set" if value is None else "is empty"
            self.reader.problem(path, f"environment variable {var} {state}")
            return ""
        return value

    def _from_file(self, path: KeyPath, name: str) -> str:
        file = Path(name).expanduser()
        try:
            value = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            self.reader.problem(path, f"cannot read {str(file)!r}: {reason}")
            return ""
        if not value:
            self.reader.problem(path, f"{str(file)!r} is empty")
            return ""
        return value
