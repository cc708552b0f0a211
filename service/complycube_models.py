"""ComplyCube's API resources as pydantic models. Pure: shared by the worker's API client and the
local simulator, so the simulator is held to the same shapes the worker reads.

Built from ComplyCube's API reference (https://docs.complycube.com/api-reference) and its SDKs.
ComplyCube omits empty fields and adds new ones without notice, so every field but the identifiers is
optional and unknown fields are kept (``extra="allow"``). Status and outcome stay strings: the
vocabulary is mapped to cubehook's own enums by the worker, where unknown values route to human
review instead of failing here. Times stay as sent; ``service.events.parse_time`` reads them
leniently (ComplyCube's own examples hold impossible times).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Resource(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class CheckRef(Resource):
    check_id: str = Field(alias="checkId", min_length=1)
    type: str | None = None
    task_id: str | None = Field(default=None, alias="taskId")


class WorkflowSession(Resource):
    """``GET /v1/workflowSessions/{id}``; the list endpoint returns the same without the checks."""

    id: str = Field(min_length=1)
    client_id: str | None = Field(default=None, alias="clientId")
    status: str | None = None
    outcome: str | None = None
    workflow_template_id: str | None = Field(default=None, alias="workflowTemplateId")
    workflow_template_name: str | None = Field(default=None, alias="workflowTemplateName")
    all_related_checks: list[CheckRef] = Field(default_factory=list, alias="allRelatedChecks")
    created_at: str | None = Field(default=None, alias="createdAt")
    completed_at: str | None = Field(default=None, alias="completedAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")


class CheckResult(Resource):
    outcome: str | None = None
    breakdown: dict[str, Any] | None = None


class Check(Resource):
    """``GET /v1/checks/{id}``; ``result`` exists only once the check is complete."""

    id: str = Field(min_length=1)
    client_id: str | None = Field(default=None, alias="clientId")
    type: str | None = None
    status: str | None = None
    result: CheckResult | None = None
    created_at: str | None = Field(default=None, alias="createdAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")


class PersonDetails(Resource):
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    dob: str | None = None
    nationality: str | None = None


class Client(Resource):
    id: str = Field(min_length=1)
    type: str | None = None
    # Personal data: kept out of repr() so a model printed by mistake does not leak it.
    entity_name: str | None = Field(default=None, alias="entityName", repr=False)
    email: str | None = Field(default=None, repr=False)
    external_id: str | None = Field(default=None, alias="externalId")
    person_details: PersonDetails | None = Field(default=None, alias="personDetails", repr=False)


class Webhook(Resource):
    id: str = Field(min_length=1)
    url: str
    enabled: bool = True
    events: list[str] = Field(default_factory=list)


class ApiError(Resource):
    type: str
    message: str | None = None
    param: str | None = None


ItemT = TypeVar("ItemT", bound=Resource)


class Page(Resource, Generic[ItemT]):
    page: int
    page_size: int = Field(alias="pageSize")
    total_items: int = Field(alias="totalItems")
    pages: int
    items: list[ItemT]
