"""The simulator's admin HTTP API under ``/admin``, guarded by its own token.

Every request needs the header ``X-Admin-Token: <token>`` (the venue's ``admin_token``,
printed by ``krakenbot sim``); without it the answer is 401. Bodies and answers are JSON.

==========================  ==============================================================
``GET /admin/status``       engine state, system status, time, counts of connections and
                            live faults
``POST /admin/status``      ``{"system": "cancel_only"}``: Kraken's system status, one of
                            online, maintenance (pauses the engine), cancel_only,
                            post_only, limit_only; every WebSocket gets a ``status`` frame
``GET /admin/faults``       every fault with its state (scheduled/active/done/cancelled)
``POST /admin/faults``      inject one: ``{"kind": "rest_error", "error": "EService:Busy",
                            "endpoint": "AddOrder", "count": 2}`` (fields: ``FaultSpec``)
``GET /admin/faults/ID``    one fault
``DELETE /admin/faults/ID`` cancel one (``DELETE /admin/faults``: all)
``POST /admin/engine/pause``   ``{"duration_s": 5}`` (optional), same as a ``pause_engine``
``POST /admin/engine/resume``  resume the engine, end every pause
``GET /admin/connections``  the open WebSocket connections
``GET /admin/accounts``     accounts with their API keys (never a secret) and balances
``POST /admin/accounts``    ``{"account": "bob", "balances": {"USD": "1000"}}`` → new key pair
``POST /admin/keys``        ``{"account": "trader", "permissions": ["query_funds"],
                            "nonce_window": 0}`` → a new key pair on an existing account
                            (``permissions``: ids or Kraken's names, see ``keys``; all if
                            absent)
==========================  ==============================================================

This module owns the admin routes; the faults themselves are ``faults``'.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import orjson
from aiohttp import web

from bot.core.errors import ConfigError, ExchangeError
from bot.sim.faults import FaultKind, FaultSpec
from bot.sim.keys import KeySpec
from bot.sim.rest_common import dumps
from bot.sim.rest_format import rfc3339
from bot.sim.venue import VENUE_KEY, Credentials, SimVenue
from bot.sim.venue_orders import SYSTEM_STATUSES

__all__ = ["ADMIN_HEADER", "admin_app"]

ADMIN_HEADER: Final = "X-Admin-Token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json")


def _problem(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


@web.middleware
async def _require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[VENUE_KEY].admin_token.encode()
    given = request.headers.get(ADMIN_HEADER, "").encode()
    if not hmac.compare_digest(given, expected):
        return _problem(401, f"missing or wrong {ADMIN_HEADER} header")
    return await handler(request)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TypeError("body must be a JSON object")
    return data


def _venue(request: web.Request) -> SimVenue:
    return request.app[VENUE_KEY]


async def status(request: web.Request) -> web.Response:
    venue = _venue(request)
    live = [f for f in venue.faults.list() if f.state in ("scheduled", "active")]
    return _json(
        {
            "paused": venue.paused,
            "system": venue.system_status,
            "time": rfc3339(venue.now_ns()),
            "tier": str(venue.tier),
            "symbols": list(venue.instruments),
            "connections": len(venue.connections),
            "faults": len(live),
        }
    )


async def list_faults(request: web.Request) -> web.Response:
    return _json({"faults": [f.as_dict() for f in _venue(request).faults.list()]})


async def add_fault(request: web.Request) -> web.Response:
    try:
        spec = FaultSpec.from_dict(await _body(request))
    except (ValueError, TypeError) as exc:
        return _problem(400, str(exc))
    fault = await _venue(request).faults.inject(spec)
    return _json({"fault": fault.as_dict()}, 201)


async def get_fault(request: web.Request) -> web.Response:
    fault = _venue(request).faults.get(request.match_info["fault_id"])
    if fault is None:
        return _problem(404, "no such fault")
    return _json({"fault": fault.as_dict()})


async def cancel_fault(request: web.Request) -> web.Response:
    fault_id = request.match_info["fault_id"]
    faults = _venue(request).faults
    if faults.get(fault_id) is None:
        return _problem(404, "no such fault")
    return _json({"cancelled": faults.cancel(fault_id)})


async def cancel_faults(request: web.Request) -> web.Response:
    return _json({"cancelled": _venue(request).faults.cancel()})


async def pause(request: web.Request) -> web.Response:
    try:
        body = await _body(request)
        spec = FaultSpec.from_dict({**body, "kind": str(FaultKind.PAUSE_ENGINE)})
    except (ValueError, TypeError) as exc:
        return _problem(400, str(exc))
    fault = await _venue(request).faults.inject(spec)
    return _json({"paused": True, "fault": fault.as_dict()})


async def resume(request: web.Request) -> web.Response:
    _venue(request).faults.resume_engine()
    return _json({"paused": False})


async def set_status(request: web.Request) -> web.Response:
    """``POST /admin/status`` with ``{"system": "cancel_only"}``: one of Kraken's states."""
    venue = _venue(request)
    try:
        body = await _body(request)
    except (ValueError, TypeError) as exc:
        return _problem(400, str(exc))
    system = body.get("system")
    if system not in SYSTEM_STATUSES:
        return _problem(400, f"system must be one of {', '.join(SYSTEM_STATUSES)}")
    await venue.set_system_status(system)
    return _json({"system": venue.system_status, "paused": venue.paused})


async def connections(request: web.Request) -> web.Response:
    conns = _venue(request).connections.values()
    return _json(
        {
            "connections": [
                {"conn_id": c.conn_id, "kind": c.kind, "account": c.account} for c in conns
            ]
        }
    )


async def accounts(request: web.Request) -> web.Response:
    venue = _venue(request)
    out = []
    for name in venue.accounts():
        creds = venue.credentials(name)
        balances = venue.exchange.balances(name)
        keys = [
            {
                "api_key": key.api_key,
                "permissions": sorted(p.value for p in key.permissions),
                "nonce_window": key.nonce_window,
            }
            for key in venue.keys_of(name)
        ]
        out.append({"account": name, "api_key": creds.api_key, "balances": balances, "keys": keys})
    return _json({"accounts": out})


def _key_answer(creds: Credentials) -> dict[str, Any]:
    return {
        "account": creds.account,
        "api_key": creds.api_key,
        "api_secret": creds.api_secret,
        "permissions": sorted(p.value for p in creds.permissions),
        "nonce_window": creds.nonce_window,
    }


async def add_key(request: web.Request) -> web.Response:
    venue = _venue(request)
    try:
        body = await _body(request)
        spec = KeySpec.from_dict({k: v for k, v in body.items() if k != "balances"})
        if "balances" in body:
            return _problem(400, "balances: a key opens no account (POST /admin/accounts does)")
        if spec.account not in venue.accounts():
            return _problem(404, f"no account {spec.account}")
        creds = venue.add_key(
            spec.account,
            spec.permissions,
            nonce_window=spec.nonce_window,
            api_key=spec.api_key,
            api_secret=spec.api_secret,
        )
    except (ValueError, TypeError) as exc:
        return _problem(400, str(exc))
    except ExchangeError as exc:
        return _problem(409, f"{exc.code}: {exc.detail}")
    except ConfigError as exc:
        return _problem(400, str(exc))
    return _json(_key_answer(creds), 201)


def _new_account(body: dict[str, Any]) -> tuple[str, dict[str, Decimal] | None]:
    name = body.get("account")
    if not isinstance(name, str) or not name or name.startswith("~"):
        raise ValueError("account must be a name (not starting with '~')")
    raw = body.get("balances")
    if raw is not None and not isinstance(raw, dict):
        raise TypeError("balances must be an object of asset: amount")
    return name, {str(k): Decimal(str(v)) for k, v in raw.items()} if raw else None


async def add_account(request: web.Request) -> web.Response:
    try:
        name, balances = _new_account(await _body(request))
        creds = _venue(request).add_account(name, balances)
    except (ValueError, TypeError, InvalidOperation) as exc:
        return _problem(400, str(exc) or "bad balances")
    except ExchangeError as exc:
        return _problem(409, exc.code)
    return _json(_key_answer(creds), 201)


def admin_app(venue: SimVenue) -> web.Application:
    """The ``/admin`` sub-application (mount it with ``app.add_subapp("/admin", ...)``)."""
    app = web.Application(middlewares=[_require_token])
    app[VENUE_KEY] = venue
    app.router.add_get("/status", status)
    app.router.add_post("/status", set_status)
    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", cancel_faults)
    app.router.add_get("/faults/{fault_id}", get_fault)
    app.router.add_delete("/faults/{fault_id}", cancel_fault)
    app.router.add_post("/engine/pause", pause)
    app.router.add_post("/engine/resume", resume)
    app.router.add_get("/connections", connections)
    app.router.add_get("/accounts", accounts)
    app.router.add_post("/accounts", add_account)
    app.router.add_post("/keys", add_key)
    return app
