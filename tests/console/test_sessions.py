"""A login's session and what the console's answers tell browsers and caches: a new server-side
session on every login (the one before it ended), the __Host- cookie when the console is reached
over HTTPS, redirects that never name a host taken from the request, and no answer but the style
sheet kept by a cache."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis
from starlette.testclient import TestClient

from cubehook_console.app import create_console_app
from cubehook_console.auth import COOKIE
from cubehook_console.settings import ConsoleSettings
from cubehook_console.state import Console
from cubehook_console.users import Role, UserStore
from service import keys
from service.settings import Settings
from tests.conftest import Receiver, SimServer
from tests.console.conftest import PASSWORD, csrf, decided, login, with_rules
from tests.jobs.conftest import Pipeline


@pytest.fixture
def worker_settings(worker_settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    return with_rules(worker_settings, receiver, tmp_path)


def sessions(redis: Redis) -> set[str]:
    return {key.decode() for key in redis.scan_iter(keys.console_session("*"))}


def log_in_again(client: TestClient, name: str) -> None:
    """A login posted by a browser already logged in (the login form of another tab, say)."""
    token = csrf(client.get("/queue").text)
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": token})
    assert answer.status_code == 303, answer.text


def test_every_login_starts_a_new_session_and_ends_the_one_before(
    console: Console, app_client: Callable[..., TestClient], redis: Redis
) -> None:
    client = login(app_client(), "viewer")
    first = dict(client.cookies)
    assert len(sessions(redis)) == 1
    log_in_again(client, "viewer")
    second = dict(client.cookies)
    assert len(sessions(redis)) == 1  # a new one, and the first one gone
    log_in_again(client, "operator")  # another user, in the same browser
    assert len(sessions(redis)) == 1
    assert client.get("/operations").status_code == 200
    assert 'id="user">operator' in client.get("/queue").text
    for earlier in (first, second):  # copies of the cookie from before each login
        thief = app_client(cookies=earlier)
        assert thief.get("/queue").status_code == 303  # sent to log in


@pytest.fixture
def https_console(
    worker_settings: Settings, runtime_env: dict[str, str], pipeline: Pipeline
) -> Iterator[TestClient]:
    """The console as configured to be reached at https://console.example/."""
    settings = worker_settings.model_copy(update={"console_url": "https://console.example/"})
    console = Console.build(settings, ConsoleSettings(secret_key="k" * 40), runtime_env)
    UserStore(console.audit.engine).add("viewer", Role.VIEWER, PASSWORD)
    base = "https://console.example"
    with TestClient(create_console_app(console), base_url=base, follow_redirects=False) as client:
        yield client


def test_over_https_the_cookie_is_a_host_cookie(https_console: TestClient) -> None:
    page = https_console.get("/login")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"__Host-{COOKIE}=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "path", "httponly"} <= attributes
    assert "domain" not in attributes
    login(https_console, "viewer")
    assert https_console.get("/queue").status_code == 200
    https_console.cookies.clear()
    https_console.cookies.set(COOKIE, "anything")  # the plain name is not read at all
    assert https_console.get("/queue").status_code == 303


def test_redirects_never_name_the_host_the_request_named(
    console: Console, app_client: Callable[..., TestClient]
) -> None:
    evil = {"host": "evil.example"}
    client = app_client()
    token = csrf(client.get("/login", headers=evil).text)
    answers = [
        client.get("/queue", headers=evil),  # to log in
        client.get("/queue/", headers=evil),  # the trailing slash
        client.get("/static", headers=evil),
        client.get("/", headers=evil),
        client.post("/login", headers=evil, data={"name": "viewer", "password": PASSWORD, "csrf": token}),
        client.get("/queue/", headers=evil),  # logged in
        client.get("/login", headers=evil),
    ]
    for answer in answers:
        assert answer.is_redirect, answer.request.url
        location = answer.headers["location"]
        assert location.startswith("/"), location
        assert not location.startswith("//"), location


def test_no_answer_but_the_style_sheet_may_be_kept_by_a_cache(
    console: Console, app_client: Callable[..., TestClient], pipeline: Pipeline, sim: SimServer
) -> None:
    """Pages name customers and reviewers; a redirect sets the session's cookie: none is stored by
    a browser's or a proxy's cache (`Cache-Control: no-store`)."""
    sid = decided(pipeline, sim, "rejected")
    client = app_client()
    token = csrf(client.get("/login").text)
    answers = [
        client.get("/login"),
        client.get("/queue"),
        client.post("/login", data={"name": "operator", "password": PASSWORD, "csrf": token}),
        client.get("/"),
        client.get("/queue"),
        page := client.get(f"/sessions/{sid}"),
        client.get(re.findall(rf'href="(/sessions/{sid}/snapshots/\d+)"', page.text)[0]),
        client.get("/operations"),
        client.get("/sessions/nosuchsession"),
        client.get("/sessions/a%00b"),
        client.get("/healthz"),
        client.post("/logout", data={"csrf": csrf(client.get("/queue").text)}),
    ]
    for answer in answers:
        assert answer.headers.get("cache-control") == "no-store", answer.request.url
    assert "no-store" not in client.get("/static/console.css").headers.get("cache-control", "")
