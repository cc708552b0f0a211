"""Snapshots minimised to what decisions use, and erased: allow-lists over ComplyCube's JSON."""

from __future__ import annotations

import copy
import json
from typing import Any

from service.complycube_models import Check, WorkflowSession
from tests.conftest import fixture_bytes
from workers.audit.privacy import ERASED, erased, minimal
from workers.judging.reconcile import reconcile

PERSON = {"firstName": "Jane", "lastName": "attention", "dob": {"day": 1, "month": 2, "year": 1990},
          "documentNumber": "X1234567", "nationality": "GB"}  # fmt: skip


def snapshot() -> tuple[dict[str, Any], dict[str, Any]]:
    """The fixtures, with what a real document check and screening check carry about the person."""
    session = json.loads(fixture_bytes("workflow-session-complete.json"))
    session["tasks"] = [{"id": "task_doc_1", "answers": {"fullName": "Jane Roe"}}]
    document = json.loads(fixture_bytes("check-document-rejected.json"))
    document["result"]["breakdown"]["extractedData"] = copy.deepcopy(PERSON)
    screening = json.loads(fixture_bytes("check-screening-clear.json"))
    screening["result"]["breakdown"]["matches"] = [{"name": "Jane Roe", "isPep": True, "score": 0.7}]
    pending = json.loads(fixture_bytes("check-pending.json"))
    checks = {"689c78f619987c0002774921": document, "689c78f619987c0002774922": pending,
              "689c78f619987c0002774923": screening}  # fmt: skip
    return session, checks


def leaves(node: object) -> list[object]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in leaves(value)]
    return [node]


PERSONAL_VALUES = {"John Doe", "Jane Roe", "Jane", "attention", "X1234567", "GB", 1990, 0.7}  # and isPep


def reconciled(session: dict[str, Any], checks: dict[str, Any]) -> Any:
    parsed = WorkflowSession.model_validate(session)
    return reconcile(parsed, {cid: Check.model_validate(raw) if raw else None for cid, raw in checks.items()})


def test_a_minimal_snapshot_keeps_nothing_personal_and_decides_the_same() -> None:
    session, checks = snapshot()
    small_session, small_checks = minimal(session, checks)
    assert not PERSONAL_VALUES & set(leaves(small_session) + leaves(small_checks))
    assert "entityName" not in small_session
    assert "tasks" not in small_session
    assert all("entityName" not in check for check in small_checks.values())
    assert "extractedData" not in small_checks["689c78f619987c0002774921"]["result"]["breakdown"]
    full, lean = reconciled(session, checks), reconciled(small_session, small_checks)
    assert lean == full  # the same outcomes, findings, discrepancies and fingerprint
    assert lean.fingerprint == full.fingerprint
    assert lean.checks[0].findings == ("formatAnalysis.documentNumberFormat: rejected",
                                       "dataValidation.expiryDate: rejected")  # fmt: skip


def test_an_erased_snapshot_keeps_the_structure_and_the_harmless_fields() -> None:
    session, checks = snapshot()
    gone_session, gone_checks = erased(session, checks)
    assert not PERSONAL_VALUES & set(leaves(gone_session) + leaves(gone_checks))
    assert gone_session["entityName"] == ERASED
    assert gone_session["tasks"] == [{"id": ERASED, "answers": {"fullName": ERASED}}]
    for kept in ("id", "clientId", "status", "outcome", "workflowTemplateId", "workflowTemplateName",
                 "allRelatedChecks", "completedAt"):  # fmt: skip
        assert gone_session[kept] == session[kept]
    document = gone_checks["689c78f619987c0002774921"]
    assert document["result"]["breakdown"]["extractedData"]["dob"] == {
        "day": ERASED,
        "month": ERASED,
        "year": ERASED,
    }
    assert (
        document["result"]["breakdown"]["extractedData"]["lastName"] == ERASED
    )  # an outcome word, and a name
    assert document["result"]["breakdown"]["formatAnalysis"] == {
        "mrzFormat": "clear",
        "documentNumberFormat": "rejected",
    }
    assert (document["documentId"], document["result"]["outcome"]) == ("689c78e219987c000277491a", "rejected")
    assert gone_checks["689c78f619987c0002774923"]["result"]["breakdown"]["matches"] == [
        {"name": ERASED, "isPep": ERASED, "score": ERASED}
    ]
    assert reconciled(gone_session, gone_checks) == reconciled(session, checks)


def test_erasing_twice_changes_nothing_more_and_a_missing_check_stays_missing() -> None:
    session, checks = snapshot()
    checks["689c78f619987c0002774922"] = None  # the API answered 404 for it
    once = erased(session, checks)
    assert erased(*once) == once
    assert once[1]["689c78f619987c0002774922"] is None
    assert erased(*minimal(session, checks)) == minimal(session, checks)  # minimal is already erased
