"""The profile view: one customer's company, licenses, downloads, news and forum at a glance.

`GET /api/v1/customers/<n>/overview` asks the services that own each part **in parallel**,
each call with its own timeout (`OVERVIEW_TIMEOUT`, default 2 s), as the signed-in person:
every service checks membership and rights itself, exactly as for the part's own page. So

- a part the person has no right to (`403`) is left out and named in `restricted`;
- a part whose service is down, slow or failing is named in `unavailable`, and the view
  answers in time with the rest;
- when every service that answered says the profile is none of the person's business
  (`404`), so does the view.

The view only reshapes what the services answered (support status, newest first); it owns
no data of its own.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from gateway.upstream import Upstream
from shared.auth import Principal
from shared.problems import Problem

overview = Blueprint("overview", __name__, url_prefix="/api/v1", description="The profile view")

EXPIRING_WITHIN_DAYS = 60
NEWEST_RELEASES = 5
NEWEST_NEWS = 5
UPCOMING_TRAININGS = 5
RECENT_TOPICS = 5


@dataclass(frozen=True)
class Part:
    name: str
    service: str
    path: str  # with {n} for the customer number


PARTS = (
    Part("profile", "identity", "/api/v1/customers/{n}/profile"),
    Part("licenses", "licensing", "/api/v1/customers/{n}/licenses"),
    Part("downloads", "distribution", "/api/v1/customers/{n}/downloads"),
    Part("news", "distribution", "/api/v1/customers/{n}/news"),
    Part("forum", "forum", f"/api/v1/forum/topics?limit={RECENT_TOPICS}"),
)


class OverviewSchema(Schema):
    customer_number = fields.String()
    profile = fields.Dict(allow_none=True, metadata={"description": "identity's profile: company, addresses"})
    licenses = fields.List(fields.Dict(), allow_none=True, metadata={"description": "with support status"})
    downloads = fields.List(fields.Dict(), allow_none=True, metadata={"description": "the newest releases"})
    news = fields.Dict(allow_none=True, metadata={"description": "{news, trainings}: latest and upcoming"})
    forum = fields.List(fields.Dict(), allow_none=True, metadata={"description": "recently active topics"})
    unavailable = fields.List(fields.String(), metadata={"description": "parts that could not be fetched"})
    restricted = fields.List(fields.String(), metadata={"description": "parts the person has no right to"})


def part_timeout() -> float:
    return float(os.environ.get("OVERVIEW_TIMEOUT") or 2.0)


def _pool() -> ThreadPoolExecutor:
    pool = current_app.extensions.get("overview_pool")
    if pool is None:
        # Shared by the worker's threads: a few calls per view, each bounded by its timeout.
        pool = current_app.extensions.setdefault(
            "overview_pool", ThreadPoolExecutor(max_workers=32, thread_name_prefix="overview")
        )
    return pool


def _fetch(upstream: Upstream, part: Part, number: str, principal: Principal, timeout: float, correlation: str):
    """(status, body) of one part; status 0 when the service could not be reached in time."""
    try:
        answer = upstream.request(
            part.service,
            "GET",
            part.path.format(n=number),
            headers={"Accept": "application/json", "X-Correlation-ID": correlation},
            principal=principal,
            timeout=timeout,
        )
    except Problem:  # refused (503) or timed out (504): upstream.py answered already
        return 0, None
    try:
        return answer.status, json.loads(answer.data) if answer.data else None
    except ValueError:
        return answer.status, None


def gather(upstream: Upstream, number: str, principal: Principal, correlation: str) -> dict:
    timeout = part_timeout()
    started = time.monotonic()
    futures = {
        part.name: _pool().submit(_fetch, upstream, part, number, principal, timeout, correlation) for part in PARTS
    }
    # Each call has its own timeout; the margin covers connecting and the pool's scheduling.
    wait(futures.values(), timeout=timeout + 1.0)
    view: dict = {"customer_number": number, "unavailable": [], "restricted": []}
    statuses = {}
    for part in PARTS:
        future = futures[part.name]
        status, body = future.result() if future.done() else (0, None)
        statuses[part.name] = status
        view[part.name] = None
        if status == 200 and body is not None:
            view[part.name] = SHAPES[part.name](body)
        elif status == 403:
            view["restricted"].append(part.name)
        elif status != 404:
            view["unavailable"].append(part.name)
    profile_parts = [statuses[p.name] for p in PARTS if p.service != "forum"]
    if 404 in profile_parts and not any(status in (200, 403) for status in profile_parts):
        raise Problem(404, "not-found", "Not found", "No such customer profile.")
    current_app.logger.info(
        "overview of %s in %.0f ms, unavailable: %s",
        number,
        (time.monotonic() - started) * 1000,
        ", ".join(view["unavailable"]) or "none",
    )
    return view


# --- shaping what the services answered -------------------------------------------------


def support_status(support_until: str | None, today: date) -> str:
    """`active`, `expiring` (within EXPIRING_WITHIN_DAYS), `expired` or `none`."""
    if not support_until:
        return "none"
    ends = date.fromisoformat(support_until[:10])
    if ends < today:
        return "expired"
    return "expiring" if (ends - today).days <= EXPIRING_WITHIN_DAYS else "active"


def _licenses(body: dict) -> list[dict]:
    today = datetime.now(UTC).date()
    items = [item | {"support_status": support_status(item.get("support_until"), today)} for item in body["items"]]
    # Expiring support first: that is what the customer should act on.
    order = {"expiring": 0, "expired": 1, "active": 2, "none": 3}
    return sorted(items, key=lambda item: (order[item["support_status"]], item.get("support_until") or ""))


def _downloads(body: dict) -> list[dict]:
    newest = sorted(body["items"], key=lambda r: (r.get("released_on") or "", r.get("version") or ""), reverse=True)
    return newest[:NEWEST_RELEASES]


def _news(body: dict) -> dict:
    now = datetime.now(UTC).isoformat()
    items = body["items"]
    trainings = sorted(
        (i for i in items if i.get("kind") == "training" and (i.get("starts_at") or "") >= now),
        key=lambda i: i["starts_at"],
    )
    news = sorted((i for i in items if i.get("kind") != "training"), key=lambda i: i.get("published_at") or "")
    return {"news": news[::-1][:NEWEST_NEWS], "trainings": trainings[:UPCOMING_TRAININGS]}


SHAPES = {
    "profile": lambda body: body,
    "licenses": _licenses,
    "downloads": _downloads,
    "news": _news,
    "forum": lambda body: body["items"],
}


@overview.route("/customers/<customer_number>/overview")
class Overview(MethodView):
    @overview.response(200, OverviewSchema)
    def get(self, customer_number):
        """The profile view; `unavailable` names the parts whose service did not answer."""
        from gateway import api
        from shared.logs import current_correlation_id

        caller = api.store().signed_in(request)
        principal = replace(caller.principal, client=request.remote_addr)
        return gather(api.upstream(), customer_number, principal, current_correlation_id())
