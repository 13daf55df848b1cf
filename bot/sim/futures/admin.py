"""The Futures simulator's admin API under ``/admin`` (header ``X-Admin-Token``).

- ``GET /admin/faults``: every fault with its state; ``POST /admin/faults`` with a JSON
  ``FaultSpec`` (``{"kind": "lose_response", "endpoint": "sendorder"}``) schedules one;
  ``DELETE /admin/faults`` (or ``/admin/faults/{id}``) cancels them.
- ``GET /admin/deadman``: which accounts have the dead-man's switch armed and how often
  it fired.
- ``POST /admin/step``: one pump step now (for a simulator started without its pump).

A missing or wrong token is HTTP 401. This module owns only these routes.
"""

from __future__ import annotations

import hmac

from aiohttp import web

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


async def _step(request: web.Request) -> web.Response:
    venue = _venue(request)
    await venue.step()
    return web.json_response({"ok": True})


def admin_routes() -> list[web.RouteDef]:
    return [
        web.get("/admin/faults", _list),
        web.post("/admin/faults", _inject),
        web.delete("/admin/faults", _cancel),
        web.delete("/admin/faults/{fault_id}", _cancel),
        web.get("/admin/deadman", _deadman),
        web.post("/admin/step", _step),
    ]
