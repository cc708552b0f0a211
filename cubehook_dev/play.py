"""`cubehook simulate play`: a session created in the local ComplyCube that `cubehook dev` runs,
its webhooks sent by the simulator as ComplyCube sends them (signed, one per status change and
check), and its decision waited for on the audit trail, as the system made it.

It plays in the ComplyCube the settings name (CUBEHOOK_COMPLYCUBE_BASE_URL), which must be the
simulator: `cubehook dev` records it in var/dev.env, so the command works with
CUBEHOOK_ENV_FILE=var/dev.env from the folder `make run` runs in. A real ComplyCube has no /_sim
control API, and is refused.
"""

from __future__ import annotations

import contextlib
import time

import click
import httpx2

from cubehook_dev.demo import cubehook_path
from service.errors import NoAuditTrail
from service.settings import Settings
from workers.audit.store import AuditStore
from workers.judging.judge import Decision

POLL_SECONDS = 0.25


def play(settings: Settings, preset: str, wait: bool, timeout: float) -> None:
    """Create and play one session; print its id, then (``wait``) its decision. ClickException
    (one line) when there is no simulator, or no decision within ``timeout`` seconds."""
    url = simulator_url(settings)
    try:
        answer = httpx2.post(f"{url}/_sim/sessions", json={"preset": preset}, timeout=10)
    except httpx2.TransportError as exc:
        raise click.ClickException(
            f"the simulator at {url} does not answer ({type(exc).__name__}): is `make run` still running?"
        ) from None
    if answer.status_code == 404:
        raise click.ClickException(f"{url} is not the simulator (no /_sim control API)")
    if not answer.is_success:
        raise click.ClickException(f"the simulator refused the session: {answer.status_code} {answer.text}")
    created = answer.json()
    session_id = created["sessionId"]
    says = created["sessionOutcome"] or created["finalStatus"]
    click.echo(f"session {session_id}: playing; ComplyCube's webhooks follow, and it will say {says}")
    if wait:
        decision = wait_for_decision(settings, session_id, timeout)
        if decision is None:
            raise click.ClickException(
                f"no decision for session {session_id} within {timeout:g} s: are the workers running? "
                f"`cubehook status` tells, `cubehook history {session_id}` shows what arrived"
            )
        click.echo(describe(decision))
    click.echo(f"{cubehook_path()} history {session_id}")


def simulator_url(settings: Settings) -> str:
    """The simulator's root: the ComplyCube API the settings name, without its /v1."""
    base = settings.complycube_base_url.rstrip("/")
    if base.startswith("https://") or not base.endswith("/v1"):  # a real ComplyCube: never played in
        raise click.ClickException(
            f"no simulator to play in: the ComplyCube API here is {base}. Start `make run` (cubehook dev) "
            "and run this with CUBEHOOK_ENV_FILE=var/dev.env (the file it writes says where the simulator is)"
        )
    return base.removesuffix("/v1")


def wait_for_decision(settings: Settings, session_id: str, timeout: float) -> Decision | None:
    """The session's decision once it is on the audit trail; None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    store: AuditStore | None = None
    try:
        while time.monotonic() < deadline:
            if store is None:
                with contextlib.suppress(NoAuditTrail):  # the worker has not created it yet
                    store = AuditStore.existing(settings.database_url)
            decision = store.latest_decision(session_id) if store else None
            if decision is not None:
                return decision
            time.sleep(POLL_SECONDS)
        return None
    finally:
        if store is not None:
            store.engine.dispose()


def describe(decision: Decision) -> str:
    """``decision dec_...: rejected, needs review`` and its reasons, one a line."""
    verdict = decision.outcome or decision.status
    review = ", needs review" if decision.needs_review else ""
    reasons = [f"  because {reason}" for reason in decision.reasons]
    return "\n".join([f"decision {decision.decision_id}: {verdict}{review}", *reasons])
