"""A small, independent Kraken REST client for the loopback tests.

It signs requests with ``hashlib``/``hmac``/``base64`` directly, following Kraken's auth
guide (https://docs.kraken.com/api/docs/guides/spot-rest-auth), and deliberately does NOT
use ``bot.kraken.signer``: the simulator's verification is checked against a second,
separate implementation of the algorithm. ``sign`` is pinned to the guide's own example in
``test_sim_rest.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp


def sign(secret_b64: str, path: str, nonce: int, body: bytes) -> str:
    """API-Sign = base64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + body)))."""
    digest = hashlib.sha256(str(nonce).encode() + body).digest()
    mac = hmac.new(base64.b64decode(secret_b64), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Reply:
    """One HTTP answer: status, decoded JSON (None if not JSON) and the raw text."""

    status: int
    data: Any
    text: str

    @property
    def error(self) -> list[str]:
        """Kraken's error list; an answer that is not Kraken JSON reads as ``HTTP <status>``."""
        if not isinstance(self.data, dict) or not isinstance(self.data.get("error"), list):
            return [f"HTTP {self.status}"]
        return list(self.data["error"])

    @property
    def result(self) -> Any:
        assert isinstance(self.data, dict), self.text
        assert self.data.get("error") == [], self.data
        return self.data["result"]


@dataclass
class KrakenTestClient:
    """Signed and public calls to a Kraken-compatible REST server at ``base_url``."""

    session: aiohttp.ClientSession
    base_url: str
    api_key: str = ""
    api_secret: str = ""
    last_nonce: int = field(default=0)

    def next_nonce(self) -> int:
        self.last_nonce = max(time.time_ns(), self.last_nonce + 1)
        return self.last_nonce

    async def public(self, method: str, **params: Any) -> Reply:
        url = f"{self.base_url}/0/public/{method}"
        async with self.session.get(url, params={k: str(v) for k, v in params.items()}) as r:
            return await _reply(r)

    def build(
        self, method: str, params: dict[str, Any], *, as_json: bool, nonce: int | None
    ) -> tuple[str, bytes, dict[str, str]]:
        """(path, body, headers) of a signed request, nonce included in the body."""
        path = f"/0/private/{method}"
        nonce = self.next_nonce() if nonce is None else nonce
        fields = {"nonce": nonce, **params}
        if as_json:
            body = json.dumps(fields, separators=(",", ":")).encode()
            ctype = "application/json"
        else:
            form = {k: _form(v) for k, v in fields.items()}
            body = urllib.parse.urlencode(form).encode()
            ctype = "application/x-www-form-urlencoded"
        headers = {
            "API-Key": self.api_key,
            "API-Sign": sign(self.api_secret, path, nonce, body),
            "Content-Type": ctype,
            "User-Agent": "krakenbot-loopback-tests",
        }
        return path, body, headers

    async def private(
        self,
        method: str,
        *,
        as_json: bool = False,
        nonce: int | None = None,
        http_timeout: float | None = None,
        **params: Any,
    ) -> Reply:
        path, body, headers = self.build(method, params, as_json=as_json, nonce=nonce)
        return await self.send(path, body, headers, http_timeout=http_timeout)

    async def send(
        self, path: str, body: bytes, headers: dict[str, str], *, http_timeout: float | None = None
    ) -> Reply:
        client_timeout = aiohttp.ClientTimeout(total=http_timeout) if http_timeout else None
        async with self.session.post(
            self.base_url + path, data=body, headers=headers, timeout=client_timeout
        ) as r:
            return await _reply(r)


def _form(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _reply(response: aiohttp.ClientResponse) -> Reply:
    text = await response.text()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    return Reply(response.status, data, text)
