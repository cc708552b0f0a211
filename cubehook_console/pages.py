"""The review's pages: logging in and out, the review queue, a session's story, a person's decision.

Every handler is a short sequence: who is asking and may they (cubehook_console.auth), the form
and its CSRF token for a POST, the one thing it does, and what is recorded of it. Refusals are
``Refused``: a page with the status, and nothing changed.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from cubehook_console.auth import Refused
from cubehook_console.queries import BadFilter, QueueFilter, queue_page
from cubehook_console.state import console_of
from cubehook_console.story import story
from cubehook_console.users import Actor, Role
from workers.judging.reconcile import Issue
from workers.manual import ManualError, Overtaken


def routes() -> list[Route]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/queue", queue, methods=["GET"]),
        Route("/sessions/{session_id}", session, methods=["GET"]),
        Route("/sessions/{session_id}/snapshots/{snapshot_id:int}", snapshot, methods=["GET"]),
        Route("/sessions/{session_id}/decide", decide, methods=["POST"]),
    ]


async def home(request: Request) -> Response:
    return RedirectResponse("/queue", status_code=303)


def _local(target: str | None) -> str:
    """Where to go after logging in: a path of the console only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


async def login_page(request: Request) -> Response:
    console = console_of(request)
    who = await run_in_threadpool(console.auth.who, request)
    target = _local(request.query_params.get("next"))
    if who.user is not None:
        return RedirectResponse(target, status_code=303)
    return console.page(request, who, "login.html", next=target, error=None, name="")


async def login(request: Request) -> Response:
    console = console_of(request)
    auth = console.auth
    who = await run_in_threadpool(auth.who, request)
    form = await auth.form(request, who)
    name, password = form.get("name", "").strip()[:128], form.get("password", "")
    target = _local(form.get("next"))
    actor_name = name if await run_in_threadpool(console.users.get, name) else "(unknown user)"
    wait = await run_in_threadpool(auth.throttled, name, who.address)
    if wait:
        await run_in_threadpool(
            console.trail.record, Actor(actor_name, who.address), "login", None, False, "throttled"
        )
        minutes = (wait + 59) // 60
        raise Refused(
            429,
            "Too many failed logins",
            f"Too many failed logins for this name or from this address: try again in {minutes} minute(s).",
            {"retry-after": str(wait)},
        )
    user = await run_in_threadpool(console.users.authenticate, name, password)
    if user is None:
        await run_in_threadpool(
            console.trail.record,
            Actor(actor_name, who.address),
            "login",
            None,
            False,
            "wrong name or password",
        )
        return console.page(
            request, who, "login.html", status=401, next=target, name=name, error="Wrong name or password."
        )
    await run_in_threadpool(auth.succeeded, name, who.address)
    await run_in_threadpool(console.trail.record, Actor(user.name, who.address), "login", None, True)
    response = RedirectResponse(target, status_code=303)
    auth.login(response, who, user.name)  # a new session and token: nothing from before carries over
    return response


async def logout(request: Request) -> Response:
    console = console_of(request)
    who = await run_in_threadpool(console.auth.require, request, Role.VIEWER)
    await console.auth.form(request, who)
    await run_in_threadpool(console.trail.record, who.actor, "logout", None, True)
    response = RedirectResponse("/login", status_code=303)
    console.auth.clear(response, who)
    return response


async def queue(request: Request) -> Response:
    console = console_of(request)
    who = await run_in_threadpool(console.auth.require, request, Role.VIEWER)
    query = dict(request.query_params)
    try:
        flt = QueueFilter.parse(query)
        page = await run_in_threadpool(
            queue_page, console.audit.engine, flt, query.get("after") or None, console.options.page_size
        )
    except BadFilter as exc:
        raise Refused(400, "Bad filter", f"The queue cannot be filtered so: {exc}.") from None
    following = urlencode({**flt.query_string(), "after": page.next_cursor}) if page.next_cursor else None
    return console.page(
        request,
        who,
        "queue.html",
        flt=flt,
        page=page,
        following=following,
        issues=[i.value for i in Issue],
        first=not query.get("after"),
    )


async def session(request: Request) -> Response:
    console = console_of(request)
    who = await run_in_threadpool(console.auth.require, request, Role.VIEWER)
    session_id = request.path_params["session_id"]
    told = await run_in_threadpool(story, console, session_id)
    if told is None:
        raise Refused(404, "Unknown session", f"Nothing is on record about session {session_id}.")
    # Said only of a decision of this session that this user made: a link cannot forge the notice.
    asked = request.query_params.get("decided")
    mine = who.user.name if who.user else None
    decided = next(
        (d.decision_id for d in told.decisions if d.decision_id == asked and d.decided_by == mine), None
    )
    return console.page(
        request,
        who,
        "session.html",
        s=told,
        decided=decided,
        key=secrets.token_urlsafe(24),
        may_decide=who.user is not None and who.user.role.may(Role.REVIEWER),
    )


async def snapshot(request: Request) -> Response:
    """A snapshot's JSON as it was stored (the page shows its summary; this, on demand)."""
    console = console_of(request)
    await run_in_threadpool(console.auth.require, request, Role.VIEWER)
    session_id, wanted = request.path_params["session_id"], request.path_params["snapshot_id"]
    found = await run_in_threadpool(console.audit.history, session_id)
    for part in found:
        if part["entry"] == "snapshot" and part["id"] == wanted:
            body = {"session": part["session"], "checks": part["checks"]}
            return JSONResponse(
                json.loads(json.dumps(body, default=str)), headers={"cache-control": "no-store"}
            )
    raise Refused(404, "Unknown snapshot", f"Session {session_id} has no snapshot {wanted}.")


async def decide(request: Request) -> Response:
    """A person's decision: approve (clear) or reject, with a note (workers.manual)."""
    console = console_of(request)
    who = await run_in_threadpool(console.auth.require, request, Role.REVIEWER)
    form = await console.auth.form(request, who)
    assert who.user is not None
    session_id = request.path_params["session_id"]
    outcome, over = form.get("outcome", ""), form.get("over", "")
    try:
        made = await run_in_threadpool(
            console.manual.decide,
            session_id,
            over,
            outcome,
            who.user.name,
            form.get("note", ""),
            form.get("key", ""),
        )
    except Overtaken as exc:
        current = exc.current
        first = current.decided_by or "cubehook (automatically, for a newer state of the session)"
        await run_in_threadpool(
            console.trail.record, who.actor, "decide", session_id, False, f"overtaken by {first}"
        )
        raise Refused(
            409,
            "Someone decided first",
            f"{first} decided {current.outcome or current.status} "
            f"at {current.decided_at}, before this decision was sent. Nothing of yours was "
            "recorded: reload the session to see it, and decide again over it if you must.",
        ) from None
    except ManualError as exc:
        await run_in_threadpool(console.trail.record, who.actor, "decide", session_id, False, str(exc))
        title = "Unknown decision" if exc.status == 404 else "Decision not made"
        raise Refused(exc.status, title, f"{exc}. Nothing was recorded.") from None
    if not made.again:
        detail = f"{made.decision.outcome} ({made.decision.decision_id}) over {made.decision.supersedes}"
        await run_in_threadpool(console.trail.record, who.actor, "decide", session_id, True, detail)
    return RedirectResponse(
        f"/sessions/{quote(session_id, safe='')}?{urlencode({'decided': made.decision.decision_id})}",
        status_code=303,
    )
