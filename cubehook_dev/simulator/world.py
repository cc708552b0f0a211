"""The simulator's resources: clients, workflow sessions, checks and webhook subscriptions.

Pure and deterministic: ids come from a seeded generator, times are passed in. Records are small
slotted objects rendered to ComplyCube's JSON shapes on demand, so 100,000 sessions fit easily.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cubehook_dev.simulator.listing import Listing
from cubehook_dev.simulator.scenarios import Plan
from service.events import format_time

TASK_IDS = {"document_check": "task_doc_1", "identity_check": "task_liv_1"}
TEMPLATE_NAME = "AML + Liveness + Document Verification flow"
Document = dict[str, Any]


def iso(ts: float) -> str:
    """A timestamp as ComplyCube writes it."""
    return format_time(datetime.fromtimestamp(ts, UTC))


class SessionEventStyle(StrEnum):
    """How workflow-session events are spelled: ComplyCube's own pages do not say (see
    service/events.py). The default is the likeliest: the names catalogues copying its reference
    give, with a resourceType to match."""

    DOTTED = "dotted"  # workflow.session.completed, resourceType workflow.session
    DOTTED_BARE = "dotted-bare"  # workflow.session.completed, no resourceType
    CAMEL = "camel"  # workflowSession.completed, resourceType workflowSession (the first guess)

    def event(self, status: str) -> tuple[str, str | None]:
        """The type and resourceType of the event for a session now ``status``."""
        name = "completed" if status == "complete" else status  # the status is complete, the event completed
        if self is SessionEventStyle.CAMEL:
            return f"workflowSession.{name}", "workflowSession"
        return (
            f"workflow.session.{name}",
            None if self is SessionEventStyle.DOTTED_BARE else "workflow.session",
        )


@dataclass(slots=True)
class ClientRecord:
    id: str
    first_name: str
    last_name: str
    created: float


@dataclass(slots=True)
class CheckRecord:
    id: str
    client_id: str
    type: str
    planned_outcome: str | None
    created: float
    updated: float
    status: str = "pending"
    outcome: str | None = None


@dataclass(slots=True)
class SessionRecord:
    id: str
    client_id: str
    template_id: str
    plan: Plan
    created: float
    updated: float
    status: str = "started"
    outcome: str | None = None
    completed: float | None = None
    check_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class WebhookRecord:
    id: str
    url: str
    secret: str
    events: list[str]
    enabled: bool = True

    def wants(self, event_type: str) -> bool:
        return self.enabled and ("*" in self.events or event_type in self.events)


class World:
    def __init__(self, seed: int = 0, session_events: SessionEventStyle = SessionEventStyle.DOTTED) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - simulated ids, not secrets
        self.session_events = session_events
        self.clients: dict[str, ClientRecord] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.checks: dict[str, CheckRecord] = {}
        self.webhooks: dict[str, WebhookRecord] = {}
        self.client_checks: dict[str, list[str]] = {}  # a client's check ids, oldest first

    def new_id(self) -> str:
        """A 24-hex-digit id, shaped like ComplyCube's."""
        return f"{self._rng.getrandbits(96):024x}"

    # --- changes ---------------------------------------------------------------------------------

    def create_session(
        self, plan: Plan, first_name: str, last_name: str, template_id: str, now: float
    ) -> tuple[SessionRecord, list[Document]]:
        """A new client and its session, ``started``, with the event ComplyCube sends for it."""
        client = ClientRecord(self.new_id(), first_name, last_name, now)
        self.clients[client.id] = client
        session = SessionRecord(self.new_id(), client.id, template_id, plan, now, now)
        self.sessions[session.id] = session
        return session, self._moved(session, "started", now)

    def advance(self, session: SessionRecord, now: float) -> list[Document]:
        """Move a session one step (started -> processing -> its final status) and return the
        events ComplyCube would send for the change; [] once the session is final."""
        if session.status == "started":
            for spec in session.plan.checks:
                check = CheckRecord(self.new_id(), session.client_id, spec.type, spec.outcome, now, now)
                self.checks[check.id] = check
                self.client_checks.setdefault(check.client_id, []).append(check.id)
                session.check_ids.append(check.id)
            return self._moved(session, "processing", now)
        if session.status == "processing":
            events: list[Document] = []
            if session.plan.final_status == "complete":
                for check in self.session_checks(session):
                    if check.planned_outcome is not None:
                        check.status, check.outcome, check.updated = "complete", check.planned_outcome, now
                        events.append(self.event("check.completed", "check", self.check_summary(check), now))
                session.outcome, session.completed = session.plan.session_outcome, now
            return events + self._moved(session, session.plan.final_status, now)
        return []

    def settle(self, session: SessionRecord, now: float) -> list[Document]:
        """Advance a session to its final state at once, returning every event on the way."""
        events: list[Document] = []
        while step := self.advance(session, now):
            events += step
        return events

    def set_check_outcome(self, check: CheckRecord, outcome: str, now: float) -> Document:
        """A re-validated check: ComplyCube changes its result and reports it."""
        check.status, check.outcome, check.planned_outcome, check.updated = "complete", outcome, outcome, now
        return self.event("check.completed", "check", self.check_summary(check), now)

    def _moved(self, session: SessionRecord, status: str, now: float) -> list[Document]:
        session.status, session.updated = status, now
        event_type, resource_type = self.session_events.event(status)
        return [self.event(event_type, resource_type, self.session_payload(session), now)]

    def event(self, event_type: str, resource_type: str | None, payload: Document, now: float) -> Document:
        """An Event document; without ``resourceType`` when ``resource_type`` is None."""
        doc: Document = {"id": self.new_id(), "type": event_type}
        if resource_type is not None:
            doc["resourceType"] = resource_type
        doc.update(payload=payload, createdAt=iso(now))
        return doc

    def add_webhook(self, url: str, secret: str, events: list[str] | None = None) -> WebhookRecord:
        hook = WebhookRecord(self.new_id(), url, secret, events or ["*"])
        self.webhooks[hook.id] = hook
        return hook

    def remove_webhook(self, hook_id: str) -> WebhookRecord | None:
        """Delete a subscription: its deliveries still in progress stop with it."""
        hook = self.webhooks.pop(hook_id, None)
        if hook is not None:
            hook.enabled = False
        return hook

    # --- rendering -------------------------------------------------------------------------------

    def session_checks(self, session: SessionRecord) -> Iterator[CheckRecord]:
        return (self.checks[check_id] for check_id in session.check_ids)

    def session_payload(self, session: SessionRecord) -> Document:
        """The summary an event carries (the shape of the shared fixture): identifiers and state."""
        doc: Document = {
            "id": session.id,
            "clientId": session.client_id,
            "workflowTemplateId": session.template_id,
            "status": session.status,
        }
        if session.outcome is not None:
            doc["outcome"] = session.outcome
        doc.update(createdAt=iso(session.created), updatedAt=iso(session.updated))
        return doc

    def session_summary(self, session: SessionRecord) -> Document:
        """What the list endpoint and the event payload show: no checks."""
        doc: Document = {
            "id": session.id,
            "clientId": session.client_id,
            "entityName": self._entity_name(session.client_id),
            "status": session.status,
            "workflowTemplateId": session.template_id,
            "workflowTemplateName": TEMPLATE_NAME,
            "createdAt": iso(session.created),
            "updatedAt": iso(session.updated),
        }
        if session.outcome is not None:
            doc["outcome"] = session.outcome
        if session.completed is not None:
            doc["completedAt"] = iso(session.completed)
        return doc

    def render_session(self, session: SessionRecord) -> Document:
        doc = self.session_summary(session)
        doc.update(
            workflowId=session.template_id[:-1] + "7", workflowVersion=1, compliancePolicies=[], tasks=[]
        )
        if session.check_ids:
            doc["allRelatedChecks"] = [
                {"checkId": c.id, "type": c.type, "taskId": TASK_IDS.get(c.type, "task_aml_1")}
                for c in self.session_checks(session)
            ]
        return doc

    def check_summary(self, check: CheckRecord) -> Document:
        doc: Document = {"id": check.id, "status": check.status}
        if check.outcome is not None:
            doc["outcome"] = check.outcome
        doc.update(createdAt=iso(check.created), updatedAt=iso(check.updated))
        return doc

    def render_check(self, check: CheckRecord) -> Document:
        doc: Document = {
            "id": check.id,
            "clientId": check.client_id,
            "entityName": self._entity_name(check.client_id),
            "type": check.type,
            "status": check.status,
        }
        if check.outcome is not None:
            doc["result"] = {"outcome": check.outcome, "breakdown": breakdown(check.type, check.outcome)}
        doc.update(createdAt=iso(check.created), updatedAt=iso(check.updated))
        return doc

    def render_client(self, client: ClientRecord) -> Document:
        return {
            "id": client.id,
            "type": "person",
            "entityName": f"{client.first_name} {client.last_name}",
            "email": f"{client.first_name}.{client.last_name}@example.com".lower(),
            "personDetails": {"firstName": client.first_name, "lastName": client.last_name},
            "createdAt": iso(client.created),
            "updatedAt": iso(client.created),
        }

    def render_webhook(self, hook: WebhookRecord) -> Document:
        return {"id": hook.id, "url": hook.url, "enabled": hook.enabled, "events": list(hook.events)}

    def _entity_name(self, client_id: str) -> str:
        client = self.clients[client_id]
        return f"{client.first_name} {client.last_name}"

    # --- listing ---------------------------------------------------------------------------------

    def list_sessions(self, query: Mapping[str, str]) -> Document:
        """``GET /v1/workflowSessions``: newest first, filtered, paginated."""
        return self._session_listing.page(reversed(self.sessions.values()), query)

    def list_checks(self, query: Mapping[str, str]) -> Document:
        """``GET /v1/checks``: newest first, filtered, paginated; a client's own checks come from
        an index, so a session's look stays cheap with many clients loaded."""
        client_id = query.get("clientId")
        if client_id is None:
            records: Iterable[CheckRecord] = reversed(self.checks.values())
        else:
            records = (self.checks[c] for c in reversed(self.client_checks.get(client_id, [])))
        return self._check_listing.page(records, query)

    @property
    def _session_listing(self) -> Listing[SessionRecord]:
        return Listing(
            exact={
                "outcome": lambda s: s.outcome,
                "clientId": lambda s: s.client_id,
                "workflowTemplateId": lambda s: s.template_id,
            },
            created=lambda s: s.created,
            updated=lambda s: s.updated,
            render=self.session_summary,
        )

    @property
    def _check_listing(self) -> Listing[CheckRecord]:
        # The simulator's checks name no document, address, photo or video: filtering on one of
        # those finds nothing, as it would at ComplyCube for checks without them.
        return Listing(
            exact={
                "clientId": lambda c: c.client_id,
                "type": lambda c: c.type,
                "status": lambda c: c.status,
                "result.outcome": lambda c: c.outcome,
                **dict.fromkeys(("documentId", "addressId", "livePhotoId", "liveVideoId"), _none),
            },
            created=lambda c: c.created,
            updated=lambda c: c.updated,
            render=self.render_check,
        )


def _none(_record: CheckRecord) -> None:
    return None


def breakdown(check_type: str, outcome: str) -> Document:
    """A plausible result breakdown for a check type, every leaf carrying the outcome."""
    if check_type == "document_check":
        return {
            "extractedData": {},
            "formatAnalysis": {"mrzFormat": outcome, "documentNumberFormat": outcome},
            "dataValidation": {"expiryDate": outcome},
        }
    if check_type.endswith("screening_check"):
        return {
            "summary": {
                "pep": {"level1": outcome},
                "watchlist": {"sanctionsLists": outcome},
                "adverseMedia": {"regulatory": outcome},
            }
        }
    if check_type == "identity_check":
        return {"faceDetection": outcome, "facialSimilarity": outcome, "authenticityAnalysis": outcome}
    return {"summary": outcome}
