"""Who is asking, and may they: the session cookie, the forms' CSRF token, single sign-on, the
client's address, and failed-login throttling.

- **Session cookie.** Signed and dated with itsdangerous (HMAC-SHA256 under
  CUBEHOOK_CONSOLE_SECRET_KEY): ``{"u": user or none, "c": CSRF token}``. HttpOnly, SameSite=Lax (a
  link from a Slack alert arrives logged in; a form from elsewhere arrives without it), Secure
  over HTTPS, expiring after CUBEHOOK_CONSOLE_SESSION_HOURS (the cookie's Max-Age, and the
  signature's age, checked on every request). When the console is reached over HTTPS only (its
  CUBEHOOK_CONSOLE_URL is https://, or CUBEHOOK_CONSOLE_SECURE_COOKIES is true) the cookie is
  ``__Host-cubehook_console``, always Secure: no sibling site can set or shadow it. Every login
  starts a new session in Redis, which the cookie names, and deletes the one the cookie named
  before (a copy of the cookie from before the login is worth nothing, whoever logs in); logout
  deletes it too. The user is read from the database on every request, so a changed role or a
  removed user takes effect at once. A login issues a new token.
- **CSRF.** Every form carries the session's token; a POST without it, or with another, is
  refused (403) before anything else is read.
- **The client's address and HTTPS** are the TCP peer's, unless the peer is a trusted proxy
  (CUBEHOOK_CONSOLE_TRUSTED_PROXIES): then X-Forwarded-For (the nearest address not itself a trusted
  proxy) and X-Forwarded-Proto. Only then is the single-sign-on header believed.
- **Throttling.** Login attempts are counted in Redis per user name and per address over a window,
  before the password is checked (so attempts sent at once are counted at once); past either limit
  a login is refused (429) without checking any password; a success clears the name's count.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis import Redis
from starlette.requests import Request
from starlette.responses import Response

from cubehook_console.settings import ConsoleSettings
from cubehook_console.users import Actor, Role, User, UserStore
from service import keys

COOKIE = "cubehook_console"
HTTPS_COOKIE = f"__Host-{COOKIE}"  # Secure, Path=/, no Domain: browsers hold it to that
FORM_MAX_BYTES = 32 * 1024  # a note is at most 2,000 characters; URL-encoded, well under this
FORM_MAX_FIELDS = 16


class Refused(Exception):
    """A request refused: the console answers ``status`` with a page saying ``title`` and ``message``;
    nothing was changed."""

    def __init__(self, status: int, title: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.headers = status, title, message, headers or {}


@dataclass(frozen=True, slots=True)
class Who:
    """The visitor: a user (None before login), the session's CSRF token, where they are from."""

    user: User | None
    csrf: str
    address: str
    https: bool
    renew: bool  # the cookie must be (re)issued with this token
    session: str | None = None  # the session the cookie names (live when ``user`` is set)

    @property
    def actor(self) -> Actor:
        return Actor(self.user.name if self.user else "(anonymous)", self.address)


class Auth:
    def __init__(
        self, settings: ConsoleSettings, users: UserStore, redis: Redis, public_url: str | None = None
    ) -> None:
        """``public_url``: where people reach the console (CUBEHOOK_CONSOLE_URL), if known."""
        self.settings = settings
        self.users = users
        self.redis = redis
        https_url = (public_url or "").strip().lower().startswith("https://")
        self.https_only = settings.secure_cookies is True or (settings.secure_cookies is None and https_url)
        self.cookie = HTTPS_COOKIE if self.https_only else COOKIE
        self.max_age = int(settings.session_hours * 3600)
        self.signer = URLSafeTimedSerializer(settings.signing_key(), salt="cubehook-console-session")

    # --- who is asking ---------------------------------------------------------------------------

    def who(self, request: Request) -> Who:
        """Raises Refused (403) for a single-sign-on user the console does not know."""
        address, https, proxied = self._peer(request)
        data = self._read_cookie(request)
        csrf = data.get("c") if isinstance(data.get("c"), str) else None
        name = data.get("u") if isinstance(data.get("u"), str) else None
        sso = request.headers.get(self.settings.sso_header) if self.settings.sso_header and proxied else None
        if sso is not None:
            sso = sso.strip()
            user = self.users.get(sso)
            if user is None:
                raise Refused(
                    403,
                    "Not a console user",
                    f"{sso} has no role in the console: an operator "
                    f"can add them with `cubehook console add-user {sso} --role viewer --no-password`.",
                )
            renew = csrf is None or name != sso
            return Who(user, secrets.token_urlsafe(24) if renew else str(csrf), address, https, renew)
        session = data.get("s") if isinstance(data.get("s"), str) else None
        user = self.users.get(name) if name and session and self._live(session, name) else None
        if user is not None and not user.has_password:
            user = None  # a single-sign-on user, now without the proxy's word for it
        if csrf is None:
            return Who(None, secrets.token_urlsafe(24), address, https, True, session)
        return Who(user, csrf, address, https, False, session)

    def _live(self, session: str, name: str) -> bool:
        stored = self.redis.get(keys.console_session(session))
        if stored is None:
            return False
        return hmac.compare_digest(stored if isinstance(stored, bytes) else stored.encode(), name.encode())

    def require(self, request: Request, role: Role) -> Who:
        """The logged-in visitor with at least ``role``; else Refused (a GET is sent to log in)."""
        who = self.who(request)
        if who.user is None:
            if request.method == "GET":
                raise Refused(303, "Log in", "log in first", {"location": f"/login?next={request.url.path}"})
            raise Refused(401, "Not logged in", "Your session has ended: log in again, then retry.")
        if not who.user.role.may(role):
            raise Refused(
                403,
                "Not allowed",
                f"{who.user.name} is a {who.user.role.value}: this needs a {role.value} or more.",
            )
        return who

    def _peer(self, request: Request) -> tuple[str, bool, bool]:
        """(the client's address, over HTTPS?, through a trusted proxy?)."""
        peer = request.client.host if request.client else ""
        https = request.url.scheme == "https"
        if not self.settings.trusts(peer):
            return peer or "unknown", https, False
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        client = next((h for h in reversed(hops) if not self.settings.trusts(h)), peer)
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return client, https or proto == "https", True

    # --- the cookie ------------------------------------------------------------------------------

    def _read_cookie(self, request: Request) -> dict[str, Any]:
        raw = request.cookies.get(self.cookie)
        if not raw:
            return {}
        try:
            data = self.signer.loads(raw, max_age=self.max_age)
        except BadSignature:  # forged, or expired (SignatureExpired is one)
            return {}
        return data if isinstance(data, dict) else {}

    def issue(self, response: Response, who: Who, user: str | None, csrf: str | None = None) -> str:
        """Set the session cookie for ``user`` (None: anonymous) with ``csrf`` (new when None), in
        the session it names already (a login is ``login``)."""
        token = csrf or secrets.token_urlsafe(24)
        payload: dict[str, Any] = {"u": user, "c": token}
        if user is not None and who.user is not None and who.session is not None:
            payload["s"] = who.session
        self._set(response, who, payload)
        return token

    def login(self, response: Response, who: Who, user: str) -> None:
        """Log ``user`` in: a new session in Redis, with a new CSRF token, and the session the
        cookie named before deleted (whoever it was for, whether it is live or not)."""
        session = secrets.token_urlsafe(24)
        with self.redis.pipeline() as pipe:
            if who.session is not None:
                pipe.delete(keys.console_session(who.session))
            pipe.set(keys.console_session(session), user, ex=self.max_age)
            pipe.execute()
        self._set(response, who, {"u": user, "c": secrets.token_urlsafe(24), "s": session})

    def _set(self, response: Response, who: Who, payload: dict[str, Any]) -> None:
        response.set_cookie(
            self.cookie,
            self.signer.dumps(payload),
            max_age=self.max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self._secure(who),
        )

    def clear(self, response: Response, who: Who) -> None:
        """Log out: the session ends in Redis (a copy of the cookie is worth nothing), then in the
        browser."""
        if who.session is not None:
            self.redis.delete(keys.console_session(who.session))
        response.delete_cookie(self.cookie, path="/", httponly=True, samesite="lax", secure=self._secure(who))

    def _secure(self, who: Who) -> bool:
        if self.https_only:
            return True
        return self.settings.secure_cookies if self.settings.secure_cookies is not None else who.https

    # --- forms -----------------------------------------------------------------------------------

    async def form(self, request: Request, who: Who) -> dict[str, str]:
        """The posted form, once its CSRF token is checked; Refused otherwise."""
        if (
            request.headers.get("content-type", "").split(";")[0].strip()
            != "application/x-www-form-urlencoded"
        ):
            raise Refused(415, "Not a form", "This address takes a form posted from the console's pages.")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > FORM_MAX_BYTES:
                raise Refused(413, "Form too large", "The form is over the size limit; nothing was changed.")
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=FORM_MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise Refused(
                400, "Unreadable form", "The form could not be read; nothing was changed."
            ) from None
        if any("\x00" in name or "\x00" in value for name, value in pairs):  # refused by PostgreSQL
            raise Refused(400, "Unreadable form", "The form holds a NUL character; nothing was changed.")
        fields: dict[str, str] = {}
        for name, value in pairs:
            fields.setdefault(name, value)
        if who.renew or not hmac.compare_digest(fields.get("csrf", ""), who.csrf):
            raise Refused(
                403,
                "Form expired or forged",
                "This form's security token is missing or is not "
                "this session's. Reload the page and submit it again; nothing was changed.",
            )
        return fields

    # --- failed logins ---------------------------------------------------------------------------

    def throttled(self, name: str, address: str) -> int:
        """Count this attempt for ``name`` and ``address``, then the seconds until logins for them
        are tried again; 0: go ahead. Counted before the password is checked, in one transaction,
        so that attempts sent at once cannot all pass on the count from before them."""
        user_key, address_key = self._failure_keys(name, address)
        window = self.settings.login_window_seconds
        with self.redis.pipeline() as pipe:
            for key in (user_key, address_key):
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
                pipe.ttl(key)
            user_count, _, user_ttl, address_count, _, address_ttl = pipe.execute()
        # This attempt is counted: the limit is on the ones before it.
        waits = []
        if int(user_count) - 1 >= self.settings.login_max_failures_per_user:
            waits.append(max(int(user_ttl), 1))
        if int(address_count) - 1 >= self.settings.login_max_failures_per_address:
            waits.append(max(int(address_ttl), 1))
        return max(waits, default=0)

    def succeeded(self, name: str, address: str) -> None:
        """A login went through: the name's count is cleared, and the attempt no longer counts
        against the address."""
        user_key, address_key = self._failure_keys(name, address)
        with self.redis.pipeline() as pipe:
            pipe.delete(user_key)
            pipe.decr(address_key)
            pipe.execute()

    @staticmethod
    def _failure_keys(name: str, address: str) -> tuple[str, str]:
        return keys.console_login_failures("user", name), keys.console_login_failures("address", address)
