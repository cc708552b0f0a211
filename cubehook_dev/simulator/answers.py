"""The simulator's answers as ComplyCube words them: ``{"type", "message"}`` errors, and request
bodies read into a model, a 400 ``invalid_request`` naming the field when they do not fit."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

M = TypeVar("M", bound=BaseModel)


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"type": kind, "message": message}, status_code=status, headers=headers)


def not_found(kind: str, resource_id: str) -> JSONResponse:
    return error(404, "resource_not_found", f"{kind} with id {resource_id} not found")


async def parse(request: Request, model: type[M]) -> M | Response:
    try:
        return model.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_input=False)
        )
        return error(400, "invalid_request", detail)
