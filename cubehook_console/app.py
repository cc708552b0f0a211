"""The console's application: its routes (pages, operations), its style sheet, the error pages,
and the security headers every answer carries. What it serves with is built once (state.Console).

Every answer but the style sheet is ``Cache-Control: no-store``: pages name customers and
reviewers, and redirects set the session's cookie. A redirect's Location is always a path of the
console: Starlette builds an absolute one from the request's Host header (for a trailing slash),
which is cut to its path here, so that a forged Host never sends a browser elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cubehook_console import ops, pages
from cubehook_console.auth import Refused
from cubehook_console.settings import ConsoleSettings
from cubehook_console.state import Console
from service.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
# No script at all, styles from this origin only, no framing, forms posted here only.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HEADERS_BY_NAME = {name.decode(): value.decode() for name, value in HEADERS}  # for a Response
NO_STORE = (b"cache-control", b"no-store")
STATIC_PREFIX = "/static/"


def local_location(location: bytes) -> bytes:
    """``location`` as a path of this site: scheme and host dropped, leading slashes (and
    backslashes, which browsers read as slashes) made one."""
    parts = urlsplit(location.decode("latin-1"))
    local = "/" + parts.path.lstrip("/\\")
    if parts.query:
        local += "?" + parts.query
    if parts.fragment:
        local += "#" + parts.fragment
    return local.encode("latin-1")


class SecurityHeaders:
    """Every answer's security headers (pure ASGI: it costs a list append per answer)."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            # No name, id or filter holds a NUL (PostgreSQL refuses it in text): a clear 400.
            await PlainTextResponse(
                "400: an address with a NUL character; nothing was read or changed\n", 400,
                headers={**HEADERS_BY_NAME, "cache-control": "no-store"},
            )(scope, receive, send)  # fmt: skip
            return
        cacheable = scope["path"].startswith(STATIC_PREFIX)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, local_location(value) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
                if not cacheable and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append(NO_STORE)
                message["headers"] = headers + HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def create_console_app(console: Console) -> Starlette:
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        if exc.status in (301, 302, 303, 307):
            return RedirectResponse(exc.headers["location"], status_code=exc.status)
        html = console.templates.get_template("error.html").render(
            who=None, path=request.url.path, title=exc.title, message=exc.message, status=exc.status
        )
        return HTMLResponse(
            html, status_code=exc.status, headers={"cache-control": "no-store", **exc.headers}
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return await refused(request, Refused(404, "Not found", "There is no such page in the console."))

    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette answers a 500 outside every middleware: the security headers are added here.
        said = "The console could not answer; nothing was changed by this request. The error is in its log."
        page = await refused(request, Refused(500, "Something went wrong", said))
        page.headers.update(HEADERS_BY_NAME)
        return page

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return await refused(request, Refused(405, "Not allowed", "This address does not take that method."))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await console.close()

    app = Starlette(
        routes=[
            *pages.routes(),
            *ops.routes(),
            Route("/healthz", healthz, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={Refused: refused, 404: not_found, 405: not_allowed, 500: server_error},
        lifespan=lifespan,
    )
    app.state.console = console
    app.add_middleware(SecurityHeaders, https=False)
    return app


async def healthz(request: Request) -> Response:
    return Response("ok\n", media_type="text/plain")


def build_app(
    settings: Settings, options: ConsoleSettings, environ: Mapping[str, str] | None = None
) -> Starlette:
    return create_console_app(Console.build(settings, options, os.environ if environ is None else environ))
