import pytest
from pydantic import ValidationError

from cubehook_dev.simulator.scenarios import CheckSpec, Preset, ScenarioSpec, derive_outcome, resolve


def outcomes(spec: ScenarioSpec) -> tuple[dict[str, str | None], str | None, str]:
    plan = resolve(spec)
    return {c.type: c.outcome for c in plan.checks}, plan.session_outcome, plan.final_status


@pytest.mark.parametrize(
    ("preset", "checks", "session", "final"),
    [
        (Preset.CLEAR, {"document_check": "clear", "identity_check": "clear", "extensive_screening_check": "clear"},
         "clear", "complete"),
        (Preset.ATTENTION, {"document_check": "clear", "identity_check": "attention",
                            "extensive_screening_check": "clear"}, "attention", "complete"),
        (Preset.REJECTED, {"document_check": "rejected", "identity_check": "clear",
                           "extensive_screening_check": "clear"}, "rejected", "complete"),
        (Preset.FAILED, {"document_check": "not_processed", "identity_check": "not_processed",
                         "extensive_screening_check": "not_processed"}, "attention", "complete"),
        (Preset.DISAGREE, {"document_check": "rejected", "identity_check": "clear",
                           "extensive_screening_check": "clear"}, "clear", "complete"),
        (Preset.PENDING_CHECK, {"document_check": "clear", "identity_check": None,
                                "extensive_screening_check": "clear"}, "clear", "complete"),
        (Preset.UNKNOWN, {"document_check": "clear", "identity_check": "clear",
                          "extensive_screening_check": "surprising_new_value"}, "mystery", "complete"),
        (Preset.ABANDONED, {"document_check": None, "identity_check": None, "extensive_screening_check": None},
         None, "abandoned"),
        (Preset.CANCELLED, {"document_check": None, "identity_check": None, "extensive_screening_check": None},
         None, "cancelled"),
    ],
)  # fmt: skip
def test_presets(preset: Preset, checks: dict[str, str | None], session: str | None, final: str) -> None:
    assert outcomes(ScenarioSpec(preset=preset)) == (checks, session, final)


@pytest.mark.parametrize(("last_name", "expected"), [("attention", "attention"), ("Failed", "attention"),
                                                      ("Doe", "clear")])  # fmt: skip
def test_sandbox_last_name_convention(last_name: str, expected: str) -> None:
    _checks, session, _final = outcomes(ScenarioSpec(last_name=last_name))
    assert session == expected


def test_failed_last_name_makes_checks_not_processed() -> None:
    checks, _session, _final = outcomes(ScenarioSpec(last_name="failed"))
    assert set(checks.values()) == {"not_processed"}


def test_explicit_checks_derive_the_session_outcome() -> None:
    spec = ScenarioSpec(checks=[CheckSpec(type="standard_screening_check", outcome="match_confirmed")])
    assert outcomes(spec) == ({"standard_screening_check": "match_confirmed"}, "rejected", "complete")


def test_explicit_session_outcome_wins() -> None:
    assert outcomes(ScenarioSpec(preset=Preset.REJECTED, session_outcome="review"))[1] == "review"


def test_final_status_other_than_complete_has_no_outcome() -> None:
    assert outcomes(ScenarioSpec(preset=Preset.CLEAR, final_status="cancelled"))[1:] == (None, "cancelled")


@pytest.mark.parametrize(
    ("check_outcomes", "expected"),
    [((), "clear"), (("clear", "clear"), "clear"), (("clear", "attention"), "attention"),
     (("not_processed",), "attention"), (("attention", "rejected"), "rejected"),
     (("match_confirmed",), "rejected"), (("weird",), "attention")],
)  # fmt: skip
def test_derive_outcome(check_outcomes: tuple[str, ...], expected: str) -> None:
    assert derive_outcome(tuple(CheckSpec(type="t", outcome=o) for o in check_outcomes)) == expected


def test_unknown_fields_in_a_scenario_are_refused() -> None:
    with pytest.raises(ValidationError):
        ScenarioSpec.model_validate({"preset": "clear", "colour": "blue"})
