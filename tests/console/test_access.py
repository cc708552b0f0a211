"""Who may do what: the signing key, the bind address, logins and their throttling in Redis, the
session cookie's attributes and expiry, CSRF tokens, roles, the single-sign-on header from trusted
proxies only, the security headers, and the trail of human actions."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from itsdangerous import URLSafeTimedSerializer
from redis import Redis
from sqlalchemy import select
from starlette.testclient import TestClient

from cubehook_cli import main
from cubehook_console.auth import COOKIE
from cubehook_console.serve import config
from cubehook_console.settings import ConsoleSettings
from cubehook_console.state import Console
from cubehook_console.users import Role, UserStore
from cubehook_dev.devredis import free_port
from service import keys
from service.errors import ConfigError
from service.settings import Settings
from tests.conftest import Receiver, received, serving_config
from tests.console.conftest import PASSWORD, csrf, login, with_rules
from workers.audit.schema import console_actions, console_users


@pytest.fixture
def worker_settings(worker_settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    return with_rules(worker_settings, receiver, tmp_path)


def trail(console: Console, action: str) -> list[tuple[str, bool, str, str]]:
    with console.audit.engine.connect() as connection:
        found = connection.execute(
            select(console_actions).where(console_actions.c.action == action).order_by(console_actions.c.id)
        )
        return [(r.user_name, r.ok, r.address, r.detail) for r in found]


@pytest.mark.parametrize("key", [None, "", "too short"])
def test_the_console_refuses_to_start_without_a_signing_key(
    worker_settings: Settings, key: str | None
) -> None:
    with pytest.raises(ConfigError, match="CUBEHOOK_CONSOLE_SECRET_KEY"):
        Console.build(worker_settings, ConsoleSettings(secret_key=key), {})


def test_the_command_says_why_it_does_not_start(
    worker_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUBEHOOK_REDIS_URL", worker_settings.redis_url)
    monkeypatch.delenv("CUBEHOOK_CONSOLE_SECRET_KEY", raising=False)
    result = CliRunner().invoke(main, ["console", "--port", "0"])
    assert result.exit_code == 1
    assert "CUBEHOOK_CONSOLE_SECRET_KEY is not set" in result.output


def test_it_binds_loopback_unless_told_otherwise(
    worker_settings: Settings, runtime_env: dict[str, str]
) -> None:
    served = config(worker_settings, ConsoleSettings(secret_key="k" * 40), runtime_env)
    assert (served.host, served.port, served.proxy_headers) == ("127.0.0.1", 8300, False)


def test_its_listener_bounds_a_head_sent_in_one_write(
    worker_settings: Settings, runtime_env: dict[str, str]
) -> None:
    port = free_port()
    options = ConsoleSettings(secret_key="k" * 40, port=port)
    with (
        serving_config(config(worker_settings, options, runtime_env)),
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: t\r\nX-Flood: " + b"a" * 100_000 + b"\r\n\r\n")
        answer = received(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_add_user_stores_an_argon2_hash_and_the_password_logs_in(
    console: Console,
    app_client: Callable[..., TestClient],
    worker_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUBEHOOK_DATABASE_URL", worker_settings.database_url)
    result = CliRunner().invoke(
        main, ["console", "add-user", "ada", "--role", "reviewer"], input="a long enough secret\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output == "added ada (reviewer)\n"
    with console.audit.engine.connect() as connection:
        stored = connection.execute(
            select(console_users.c.password_hash).where(console_users.c.name == "ada")
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "a long enough secret" not in stored
    login(app_client(), "ada", "a long enough secret")
    short = CliRunner().invoke(main, ["console", "add-user", "bo", "--role", "viewer"], input="short\n")
    assert short.exit_code == 1
    assert "at least 12 characters" in short.output
    assert trail(console, "add_user")[0][3] == "ada: reviewer, a password"


def test_a_wrong_password_is_refused_and_recorded(
    console: Console, app_client: Callable[..., TestClient]
) -> None:
    client = app_client()
    page = client.get("/login")
    answer = client.post("/login", data={"name": "reviewer", "password": "wrong", "csrf": csrf(page.text)})
    assert answer.status_code == 401
    assert "Wrong name or password." in answer.text
    assert client.get("/queue").status_code == 303  # still logged out
    unknown = client.post("/login", data={"name": "nobody", "password": "wrong", "csrf": csrf(page.text)})
    assert unknown.status_code == 401
    assert trail(console, "login") == [
        ("reviewer", False, "testclient", "wrong name or password"),
        ("(unknown user)", False, "testclient", "wrong name or password"),
    ]


def test_failed_logins_are_throttled_per_user_then_per_address(
    console: Console, app_client: Callable[..., TestClient], redis: Redis
) -> None:
    client = app_client()
    token = csrf(client.get("/login").text)

    def attempt(name: str, password: str) -> int:
        return client.post("/login", data={"name": name, "password": password, "csrf": token}).status_code

    assert [attempt("reviewer", "wrong") for _ in range(3)] == [401, 401, 401]
    refused = client.post("/login", data={"name": "reviewer", "password": PASSWORD, "csrf": token})
    assert refused.status_code == 429  # even the right password: none is checked now
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many failed logins" in refused.text
    assert attempt("viewer", PASSWORD) == 303  # another user, same address: 3 of 5 failures so far
    client = app_client()  # logged in, the client's token changed: a fresh visitor from the same address
    token = csrf(client.get("/login").text)
    assert attempt("n0", "wrong") == 401
    # The address has had 5 that count: 3 failures, the refused attempt (counted before any check),
    # one more failure; the good login does not count against it.
    assert attempt("operator", PASSWORD) == 429
    user_key = keys.console_login_failures("user", "reviewer")
    assert 0 < redis.ttl(user_key) <= console.options.login_window_seconds
    assert "reviewer" not in user_key  # names are hashed in keys
    assert ("reviewer", False, "testclient", "throttled") in trail(console, "login")


def test_the_session_cookie_is_signed_httponly_samesite_and_expires(
    console: Console, app_client: Callable[..., TestClient]
) -> None:
    client = app_client()
    page = client.get("/login")
    answer = client.post("/login", data={"name": "viewer", "password": PASSWORD, "csrf": csrf(page.text)})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert f"max-age={8 * 3600}" in cookie
    assert "secure" not in cookie  # plain HTTP, no trusted proxy saying otherwise
    assert client.get("/queue").status_code == 200
    # An expired cookie (signed, but dated past the session's hours) or a forged one: logged out.
    signer = URLSafeTimedSerializer("k" * 40, salt="cubehook-console-session")
    old = itertools.count(1_000_000_000)
    signer_class = type("Old", (signer.signer,), {"get_timestamp": lambda self: next(old)})
    expired = URLSafeTimedSerializer("k" * 40, salt="cubehook-console-session", signer=signer_class)
    for forged in (
        expired.dumps({"u": "operator", "c": "x"}),
        URLSafeTimedSerializer("another key " * 4).dumps({"u": "operator", "c": "x"}),
    ):
        stranger = app_client(cookies={COOKIE: forged})
        assert stranger.get("/queue").status_code == 303


def test_secure_cookies_behind_https_and_sso_only_from_trusted_proxies(
    worker_settings: Settings, runtime_env: dict[str, str], pipeline: object
) -> None:
    from cubehook_console.app import create_console_app

    options = ConsoleSettings(
        secret_key="k" * 40, sso_header="X-Forwarded-User", trusted_proxies="10.0.0.0/8, 127.0.0.1"
    )
    console = Console.build(worker_settings, options, runtime_env)
    UserStore(console.audit.engine).add("sso.user", Role.REVIEWER, None)
    app = create_console_app(console)
    sso = {
        "X-Forwarded-User": "sso.user",
        "X-Forwarded-For": "203.0.113.9, 10.1.2.3",
        "X-Forwarded-Proto": "https",
    }
    with TestClient(app, client=("10.1.2.3", 4000), follow_redirects=False) as proxied:
        page = proxied.get("/queue", headers=sso)
        assert page.status_code == 200
        assert 'id="user">sso.user' in page.text
        assert "secure" in page.headers["set-cookie"].lower()  # HTTPS, as the trusted proxy says
        stranger = proxied.get("/queue", headers=sso | {"X-Forwarded-User": "nobody"})
        assert stranger.status_code == 403
        assert "nobody has no role in the console" in stranger.text
    with TestClient(app, client=("192.0.2.7", 4000), follow_redirects=False) as direct:
        assert direct.get("/queue", headers=sso).status_code == 303  # the header, from anyone: ignored
        # A single-sign-on user has no password: no password logs them in.
        page = direct.get("/login")
        answer = direct.post("/login", data={"name": "sso.user", "password": "", "csrf": csrf(page.text)})
        assert answer.status_code == 401
    # (Secure cookies go back over HTTPS only: the proxy's side of the connection.)
    with TestClient(
        app, client=("10.1.2.3", 4000), base_url="https://testserver", follow_redirects=False
    ) as proxied:
        page = proxied.get("/queue", headers=sso)
        assert proxied.post("/logout", headers=sso, data={"csrf": csrf(page.text)}).status_code == 303
    [(who, ok, address, _)] = trail(console, "logout")
    assert (who, ok, address) == ("sso.user", True, "203.0.113.9")  # the client, as the proxy saw it


def test_every_form_needs_this_sessions_csrf_token(
    console: Console, app_client: Callable[..., TestClient]
) -> None:
    operator = login(app_client(), "operator")
    token = csrf(operator.get("/queue").text)
    other = csrf(app_client().get("/login").text)  # another visitor's token
    for path in ("/logout", "/operations/dead-letters/nosuchjob/replay", "/operations/webhooks/w1/enable"):
        for data in ({"csrf": ""}, {"other": "field"}, {"csrf": other}):
            answer = operator.post(path, data=data)
            assert answer.status_code == 403, (path, data)
            assert "security token is missing or is not this session" in answer.text
    assert operator.get("/queue").status_code == 200  # still logged in: the logout was refused
    fresh = app_client()
    fresh.get("/login")
    assert fresh.post("/login", data={"name": "operator", "password": PASSWORD}).status_code == 403
    assert operator.post("/logout", data={"csrf": token}).status_code == 303
    not_a_form = login(app_client(), "operator").post("/logout", json={"csrf": token})
    assert not_a_form.status_code == 415


def test_roles_grow_viewer_reviewer_operator(console: Console, app_client: Callable[..., TestClient]) -> None:
    assert Role.OPERATOR.may(Role.REVIEWER)
    assert Role.REVIEWER.may(Role.VIEWER)
    assert not Role.VIEWER.may(Role.REVIEWER)
    assert not Role.REVIEWER.may(Role.OPERATOR)
    for name in ("viewer", "reviewer"):
        client = login(app_client(), name)
        token = csrf(client.get("/operations").text)
        answer = client.post("/operations/dead-letters/anyjob/replay", data={"csrf": token})
        assert answer.status_code == 403
        assert "this needs a operator or more" in answer.text.replace("an operator", "a operator")
    operator = login(app_client(), "operator")
    token = csrf(operator.get("/operations").text)
    assert operator.post("/operations/dead-letters/anyjob/replay", data={"csrf": token}).status_code == 404


def test_security_headers_on_every_answer(console: Console, app_client: Callable[..., TestClient]) -> None:
    client = app_client()
    for answer in (
        client.get("/login"),
        client.get("/queue"),
        client.get("/nowhere"),
        client.get("/static/console.css"),
    ):
        csp = answer.headers["content-security-policy"]
        assert "script-src" not in csp
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/nowhere").status_code == 404
    page = client.get("/login").text
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page  # nothing from elsewhere: no CDN
    assert client.get("/login?next=//evil.example").status_code == 200
    login(client, "viewer")
    assert client.get("/login?next=//evil.example").headers["location"] == "/queue"


def test_attempts_sent_at_once_are_counted_at_once(
    console: Console, app_client: Callable[..., TestClient]
) -> None:
    """Each attempt is counted before its password is checked: twenty wrong passwords sent together
    cannot all pass on the count from before them."""
    client = app_client()
    token = csrf(client.get("/login").text)

    def attempt(_: int) -> int:
        return client.post(
            "/login", data={"name": "reviewer", "password": "wrong", "csrf": token}
        ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(attempt, range(20)))
    assert answers.count(401) == console.options.login_max_failures_per_user
    assert answers.count(429) == 20 - console.options.login_max_failures_per_user


def test_logging_out_ends_the_session_for_every_copy_of_the_cookie(
    console: Console, app_client: Callable[..., TestClient]
) -> None:
    client = app_client()
    answer = client.post(
        "/login", data={"name": "operator", "password": PASSWORD, "csrf": csrf(client.get("/login").text)}
    )
    assert answer.status_code == 303
    copied = dict(client.cookies)
    page = client.get("/queue")
    assert page.status_code == 200
    assert client.post("/logout", data={"csrf": csrf(page.text)}).status_code == 303
    thief = app_client()
    thief.cookies.update(copied)
    assert thief.get("/queue", follow_redirects=False).status_code == 303  # sent to log in
    assert thief.post("/operations/dead-letters/x/replay", data={"csrf": csrf(page.text)}).status_code == 401


def test_a_nul_character_is_a_clear_400_with_the_security_headers(
    console: Console, app_client: Callable[..., TestClient]
) -> None:
    client = app_client()
    for path in ("/sessions/a%00b", "/queue?template=a%00b"):
        answer = client.get(path)
        assert answer.status_code == 400, path
        assert answer.headers["x-content-type-options"] == "nosniff"
    token = csrf(client.get("/login").text)
    answer = client.post("/login", data={"name": "Jane Doe\x00", "password": "x", "csrf": token})
    assert answer.status_code == 400
    assert "NUL" in answer.text
