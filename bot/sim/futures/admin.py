"""The Futures simulator's admin API under ``/admin`` (header ``X-Admin-Token``).

- ``GET /admin/faults``: every fault with its state; ``POST /admin/faults`` with a JSON
  ``FaultSpec`` (``{"kind": "lose_response", "endpoint": "sendorder"}``) schedules one;
  ``DELETE /admin/faults`` (or ``/admin/faults/{id}``) cancels them.
- ``GET /admin/deadman``: which accounts have the dead-man's switch armed and how often
  it fired.
- ``GET /admin/orders``: each account's open orders' ids (what a test reads while the
  account's own key is busy, e.g. held by a stopped daemon whose nonces it must not pass).
- ``POST /admin/step``: one pump step now (for a simulator started without its pump).
- ``POST /admin/keys`` with ``{"account", "general", "withdrawal"}`` (Kraken Futures' two
  access settings, ``bot.sim.futures.access``: ``full``/``read_only``/``none`` or Kraken's
  names; defaults Full Access and No Access; ``account`` defaults to the first): a new key
  pair on that account, answered 201 with ``api_key``, ``api_secret`` and the levels.

A missing or wrong token is HTTP 401. This module owns only these routes.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from bot.sim.futures.access import KeyAccess
from bot.sim.futures.faults import FaultSpec
from bot.sim.futures.venue import FUTURES_VENUE_KEY, FuturesVenue

__all__ = ["admin_routes"]


def _venue(request: web.Request) -> FuturesVenue:
    venue = request.app[FUTURES_VENUE_KEY]
    given = request.headers.get("X-Admin-Token", "")
    if not hmac.compare_digest(given.encode(), venue.admin_token.encode()):
        raise web.HTTPUnauthorized(text="bad admin token")
    return venue


async def _list(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response({"faults": [f.as_dict() for f in venue.faults.list()]})


async def _inject(request: web.Request) -> web.Response:
    venue = _venue(request)
    try:
        spec = FaultSpec.from_dict(await request.json())
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    fault = await venue.faults.inject(spec)
    return web.json_response(fault.as_dict())


async def _cancel(request: web.Request) -> web.Response:
    venue = _venue(request)
    count = venue.faults.cancel(request.match_info.get("fault_id"))
    return web.json_response({"cancelled": count})


async def _deadman(request: web.Request) -> web.Response:
    venue = _venue(request)
    armed = {a: venue.deadman_armed(a) for a in venue.exchange.accounts}
    fired = [{"account": a, "cancelled": n} for a, n in venue.deadman_fired]
    return web.json_response({"armed": armed, "fired": fired})


async def _orders(request: web.Request) -> web.Response:
    venue = _venue(request)
    accounts = venue.exchange.accounts
    return web.json_response({"open": {a: list(accounts[a].open_orders) for a in accounts}})


async def _step(request: web.Request) -> web.Response:
    venue = _venue(request)
    await venue.step()
    return web.json_response({"ok": True})


def _key_request(body: object) -> tuple[str | None, KeyAccess]:
    """``POST /admin/keys``'s body → (account or None, access); ``ValueError`` otherwise."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")  # noqa: TRY004 (answered as a 400)
    unknown = set(body) - {"account", "general", "withdrawal"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    account = body.get("account")
    if account is not None and (not isinstance(account, str) or not account):
        raise ValueError("account must be a name")
    return account, KeyAccess.from_dict(body)


async def _new_key(request: web.Request) -> web.Response:
    venue = _venue(request)
    try:
        account, access = _key_request(await request.json())
        creds = venue.add_key(account or venue.credentials().account, access)
    except KeyError:
        return web.json_response({"error": f"no account {account!r}"}, status=400)
    except ValueError as exc:  # a JSON error too
        return web.json_response({"error": str(exc)}, status=400)
    made = {"account": creds.account, "api_key": creds.api_key, "api_secret": creds.api_secret}
    return web.json_response({**made, **access.as_dict()}, status=201)


def admin_routes() -> list[web.RouteDef]:
    return [
        web.get("/admin/faults", _list),
        web.post("/admin/faults", _inject),
        web.delete("/admin/faults", _cancel),
        web.delete("/admin/faults/{fault_id}", _cancel),
        web.get("/admin/deadman", _deadman),
        web.get("/admin/orders", _orders),
        web.post("/admin/step", _step),
        web.post("/admin/keys", _new_key),
    ]
