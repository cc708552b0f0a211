"""What a simulated session should turn out as. Pure.

A scenario names a preset or spells out the checks. Without either, ComplyCube's sandbox
convention applies (https://docs.complycube.com/documentation/useful-resources/testing-data): a
client whose last name is
``attention`` comes out ``attention``, ``failed`` makes the checks ``not_processed``; anything
else comes out ``clear``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

STANDARD_CHECKS = ("document_check", "identity_check", "extensive_screening_check")
DEFAULT_TEMPLATE = "68566be2a37a78622f4f7be3"
FinalStatus = Literal["complete", "abandoned", "cancelled"]


class Preset(StrEnum):
    CLEAR = "clear"
    ATTENTION = "attention"
    REJECTED = "rejected"
    FAILED = "failed"  # checks not processed
    DISAGREE = "disagree"  # session says clear, a check says rejected
    PENDING_CHECK = "pending_check"  # session complete, a check still pending
    UNKNOWN = "unknown"  # outcome strings outside the documented vocabulary
    ABANDONED = "abandoned"
    CANCELLED = "cancelled"


class CheckSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=64)
    # The check's result.outcome once complete; None leaves it pending after the session completes.
    outcome: str | None = "clear"


class ScenarioSpec(BaseModel):
    """The body of ``POST /_sim/sessions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Preset | None = None
    first_name: str = Field(default="John", max_length=100)
    last_name: str = Field(default="Doe", max_length=100)
    checks: list[CheckSpec] | None = Field(default=None, max_length=32)
    session_outcome: str | None = None  # default: derived from the checks
    final_status: FinalStatus | None = None
    template_id: str = DEFAULT_TEMPLATE
    # play: step through started -> processing -> final on its own, sending webhooks;
    # manual: stay started until POST /_sim/sessions/{id}/advance moves it one step;
    # settled: final at once, no webhook (a session whose webhooks were missed).
    mode: Literal["play", "manual", "settled"] = "play"


@dataclass(frozen=True, slots=True)
class Plan:
    checks: tuple[CheckSpec, ...]
    session_outcome: str | None
    final_status: FinalStatus


def _checks(
    outcomes: dict[str, str | None] | None = None, default: str | None = "clear"
) -> tuple[CheckSpec, ...]:
    outcomes = outcomes or {}
    return tuple(CheckSpec(type=t, outcome=outcomes.get(t, default)) for t in STANDARD_CHECKS)


_PRESETS: dict[Preset, tuple[tuple[CheckSpec, ...], str | None, FinalStatus]] = {
    Preset.CLEAR: (_checks(), "clear", "complete"),
    Preset.ATTENTION: (_checks({"identity_check": "attention"}), "attention", "complete"),
    Preset.REJECTED: (_checks({"document_check": "rejected"}), "rejected", "complete"),
    Preset.FAILED: (_checks(default="not_processed"), "attention", "complete"),
    Preset.DISAGREE: (_checks({"document_check": "rejected"}), "clear", "complete"),
    Preset.PENDING_CHECK: (_checks({"identity_check": None}), "clear", "complete"),
    Preset.UNKNOWN: (_checks({"extensive_screening_check": "surprising_new_value"}), "mystery", "complete"),
    Preset.ABANDONED: (_checks(default=None), None, "abandoned"),
    Preset.CANCELLED: (_checks(default=None), None, "cancelled"),
}
_SANDBOX_LAST_NAMES = {"attention": Preset.ATTENTION, "failed": Preset.FAILED}
_SEVERITY = {"clear": 0, "attention": 1, "not_processed": 1, "rejected": 2, "match_confirmed": 2}


def derive_outcome(checks: tuple[CheckSpec, ...]) -> str:
    """ComplyCube's roll-up as the simulator plays it: the most severe check outcome wins."""
    worst = max((_SEVERITY.get(c.outcome or "clear", 1) for c in checks), default=0)
    return ("clear", "attention", "rejected")[worst]


def resolve(spec: ScenarioSpec) -> Plan:
    preset = spec.preset or _SANDBOX_LAST_NAMES.get(spec.last_name.lower())
    if preset is None and spec.checks is None:
        preset = Preset.CLEAR
    if preset is not None:
        checks, outcome, final = _PRESETS[preset]
    else:
        checks, outcome, final = tuple(spec.checks or ()), None, "complete"
    if spec.checks is not None:
        checks = tuple(spec.checks)
    final = spec.final_status or final
    if final != "complete":
        outcome = None
    elif spec.session_outcome is not None:
        outcome = spec.session_outcome
    elif outcome is None or spec.checks is not None:
        outcome = derive_outcome(checks)
    return Plan(checks=checks, session_outcome=outcome, final_status=final)
