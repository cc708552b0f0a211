"""The OpenAPI document (service/web/openapi.json) against the public app: every route documented, and
requests generated from it by schemathesis (valid and invalid ones, signed and not) answered only
as it documents, never with a 5xx other than 503, never queuing a job without a valid signature."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from redis import Redis
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from starlette.routing import Route

from service.rq_jobs import rq_queue
from service.settings import Settings
from service.web.app import create_app, create_apps
from service.web.health import OPENAPI
from tests.conftest import SECRET, serving, signature

SCHEMA = schemathesis.openapi.from_path(OPENAPI)
DOCUMENT = json.loads(OPENAPI.read_text())


def test_every_public_route_is_documented_and_every_documented_route_exists(settings: Settings) -> None:
    app = create_app(settings)
    served = {
        (r.path, m) for r in app.routes if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"
    }
    documented = {(path, method.upper()) for path, item in DOCUMENT["paths"].items() for method in item}
    assert served == documented


def test_the_admin_app_serves_the_document(settings: Settings) -> None:
    with serving(create_apps(settings).admin) as port:
        assert httpx2.get(f"http://127.0.0.1:{port}/openapi.json").json() == DOCUMENT


@pytest.fixture
def live(settings: Settings) -> Iterator[str]:
    with serving(create_app(settings)) as port:
        yield f"http://127.0.0.1:{port}"


def send(kwargs: dict[str, Any]) -> tuple[httpx2.Response, bool]:
    """Send a generated request; sign its body (two times in three, when the case has the header)
    as ComplyCube would. Returns the answer and whether the signature was valid."""
    headers = {k: v for k, v in kwargs["headers"].items() if k != "X-Schemathesis-TestCaseId"}
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
    else:
        raw = kwargs.get("data", kwargs.get("content", b""))
        body = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
    # A case that leaves the header out stays without it: that is what it tests.
    signed = "ComplyCube-Signature" in headers and zlib.crc32(body) % 3 != 0
    if signed:
        headers.update(signature(body, SECRET))
    response = httpx2.request(
        kwargs["method"],
        kwargs["url"],
        headers=headers,
        params=kwargs.get("params"),
        content=body,
        timeout=10,
    )
    return response, signed


@SCHEMA.parametrize()
@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_documented_answers(
    case: schemathesis.Case[Any], live: str, redis: Redis
) -> None:
    jobs_before = rq_queue("cubehook", redis).count
    response, signed = send(case.as_transport_kwargs(base_url=live))
    assert response.status_code < 500 or response.status_code == 503, response.text
    # Unsigned, a valid event is refused (401) on purpose: not a failure to accept valid data.
    # Signed, a body the schema calls invalid may well be answered 2xx, on purpose too: cubehook
    # reads events leniently (a field it does not need may take any shape), because a 4xx makes
    # ComplyCube retry and, after the 10th failed retry, disable the webhook.
    case.validate_response(
        response, excluded_checks=[negative_data_rejection] if signed else [positive_data_acceptance]
    )
    if not signed:
        assert rq_queue("cubehook", redis).count == jobs_before  # nothing queued
