"""A small Kraken Futures client for the fidelity tests, written from Kraken's docs only.

It shares no code with ``bot.futures`` or ``bot.sim.futures``: it signs with
``hashlib``/``hmac``/``base64`` step by step as the REST guide lists them
(https://docs.kraken.com/api/docs/guides/futures-rest), url-encodes parameters with the
standard library the way the guide's 2024 note describes (the signed ``postData`` is the
query "as it appears in the request"), and signs WebSocket challenges as the WebSocket
guide says (https://docs.kraken.com/api/docs/guides/futures-websockets). Parameters go in
the query string of a POST, as the pages' curl examples show.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

API = "/derivatives/api/v3/"


def authent(secret: str, post_data: str, nonce: str, endpoint_path: str) -> str:
    """The guide's five steps: concatenate, SHA-256, decode the secret, HMAC-SHA-512,
    base64. ``endpoint_path`` is the URL path without ``/derivatives``."""
    message = post_data + nonce + endpoint_path
    sha = hashlib.sha256(message.encode("utf-8")).digest()
    key = base64.b64decode(secret)
    return base64.b64encode(hmac.new(key, sha, hashlib.sha512).digest()).decode()


def sign_challenge(secret: str, challenge: str) -> str:
    sha = hashlib.sha256(challenge.encode("utf-8")).digest()
    mac = hmac.new(base64.b64decode(secret), sha, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Answer:
    status: int
    body: Any
    text: str

    @property
    def ok(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("result") == "success"

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else f"HTTP {self.status}"


@dataclass
class DocClient:
    session: aiohttp.ClientSession
    base_url: str
    api_key: str
    api_secret: str
    _nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(time.time_ns()))

    def next_nonce(self) -> str:
        return str(next(self._nonces))

    async def public(self, endpoint: str, params: dict[str, Any] | None = None) -> Answer:
        query = urlencode(params or {}, quote_via=quote)
        url = self.base_url + API + endpoint + (f"?{query}" if query else "")
        async with self.session.get(URL(url, encoded=True)) as r:
            return await _answer(r)

    async def private(
        self,
        method: str,
        endpoint: str,
        params: dict[str, Any] | None = None,
        *,
        nonce: str | None = None,
        secret: str | None = None,
        sign_decoded: bool = False,
    ) -> Answer:
        query = urlencode(params or {}, quote_via=quote)
        nonce = self.next_nonce() if nonce is None else nonce
        signed = "&".join(f"{k}={v}" for k, v in (params or {}).items()) if sign_decoded else query
        headers = {
            "APIKey": self.api_key,
            "Nonce": nonce,
            "Authent": authent(secret or self.api_secret, signed, nonce, "/api/v3/" + endpoint),
        }
        url = self.base_url + API + endpoint + (f"?{query}" if query else "")
        async with self.session.request(method, URL(url, encoded=True), headers=headers) as r:
            return await _answer(r)

    async def post(self, endpoint: str, params: dict[str, Any] | None = None, **kw: Any) -> Answer:
        return await self.private("POST", endpoint, params, **kw)

    async def get(self, endpoint: str, params: dict[str, Any] | None = None, **kw: Any) -> Answer:
        return await self.private("GET", endpoint, params, **kw)


async def _answer(r: aiohttp.ClientResponse) -> Answer:
    text = await r.text()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return Answer(r.status, body, text)


class DocSocket:
    """A WebSocket v1 connection: JSON in and out, the challenge signed by hand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.challenge: str | None = None

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(obj))

    async def recv(self, wait_s: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=wait_s)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        return data

    async def recv_until(self, predicate: Any, limit: int = 400) -> dict[str, Any]:
        """The first frame ``predicate`` accepts (at most ``limit`` frames read)."""
        for _ in range(limit):
            frame = await self.recv()
            if predicate(frame):
                return frame
        raise AssertionError("no matching frame")

    async def authenticate(self, api_key: str) -> str:
        await self.send({"event": "challenge", "api_key": api_key})
        frame = await self.recv_until(lambda f: f.get("event") == "challenge")
        self.challenge = frame["message"]
        return frame["message"]

    async def subscribe_private(self, feed: str, api_key: str, secret: str) -> None:
        assert self.challenge is not None
        await self.send(
            {
                "event": "subscribe",
                "feed": feed,
                "api_key": api_key,
                "original_challenge": self.challenge,
                "signed_challenge": sign_challenge(secret, self.challenge),
            }
        )
