"""Builds the `transitions` machine from the declaration in `states.lifecycle` and fires one event on it.

The machine's model is a plain `ProjectModel`, never a database row: the engine reads the row, lets the machine
decide, then writes the outcome itself in one transaction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from transitions import Machine, MachineError

from states.calendar import parse_day_param
from states.errors import EventNotAllowedError, InvalidArgumentError, UnknownEventError
from states.guards import GUARDS, SELECTORS, GuardContext
from states.lifecycle import EVENTS_BY_NAME, STATES, TRANSITIONS, ParamKind, Transition
from states.money import parse_amount_param
from states.text import PARAM_LIMIT, has_control_characters


@dataclass
class ProjectModel:
    """The machine's model: the current state, and the context guards read while an event is fired."""

    state: str
    context: GuardContext | None = None


def _guard_condition(name: str) -> Any:
    guard = GUARDS[name]

    def condition(event_data: Any) -> bool:
        model: ProjectModel = event_data.model
        assert model.context is not None
        guard(model.context)  # raises when the rule refuses
        return True

    condition.__name__ = name
    return condition


def _when_condition(key: str, expected: str) -> Any:
    def condition(event_data: Any) -> bool:
        model: ProjectModel = event_data.model
        assert model.context is not None
        return model.context.params.get(key) == expected

    condition.__name__ = f"{key}_is_{expected}"
    return condition


def _selector_condition(name: str) -> Any:
    selector = SELECTORS[name]

    def condition(event_data: Any) -> bool:
        model: ProjectModel = event_data.model
        assert model.context is not None
        return selector(model.context)

    condition.__name__ = name
    return condition


def _as_transitions_spec(transition: Transition) -> dict[str, Any]:
    # Parameter-selected arrows are tested before the guards, so that `select group=B` is not refused by a rule
    # of the `group=A` arrow. Selectors come last: an arrow's rules refuse before a fact passes the event on to
    # the next arrow (a repayment above the balance is refused, not "no arrow matches").
    conditions = [_when_condition(k, v) for k, v in transition.when]
    conditions += [_guard_condition(g) for g in transition.guards]
    conditions += [_selector_condition(s) for s in transition.selectors]
    return {
        # Plain strings: `transitions` would name Enum states by their member name, not their value.
        "trigger": transition.event.value,
        "source": [s.value for s in transition.sources],
        "dest": transition.dest.value,
        "conditions": conditions,
    }


def build_machine() -> Machine:
    """Build the life-cycle machine, without a model (models are added per firing)."""
    return Machine(
        model=None,
        states=[s.value for s in STATES],
        transitions=[_as_transitions_spec(t) for t in TRANSITIONS],
        initial=None,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )


_MACHINE: Machine | None = None
# Re-entrant: a guard may read the database, and tests make another firing happen there.
_LOCK = threading.RLock()


def allowed_events(state: str) -> list[str]:
    """Return the events that can leave `state`, in declaration order."""
    seen: list[str] = []
    for transition in TRANSITIONS:
        if state in transition.sources and transition.event not in seen:
            seen.append(transition.event)
    return seen


def check_params(event: str, params: dict[str, str]) -> None:
    """Refuse unknown events, unknown or missing parameters and values outside their choices (bad input)."""
    spec = EVENTS_BY_NAME.get(event)
    if spec is None:
        raise UnknownEventError(event, list(EVENTS_BY_NAME))
    if not spec.free_params:
        for key in params:
            if spec.param(key) is None:
                expected = ", ".join(p.name for p in spec.params) or "no parameter"
                raise InvalidArgumentError(f"{event}: unknown parameter {key!r} (takes {expected})")
    for key, text in params.items():
        declared = spec.param(key)
        limit = declared.max_length if declared is not None else PARAM_LIMIT
        if len(text) > limit:
            raise InvalidArgumentError(f"{event}: {key}= is longer than {limit} characters")
        if has_control_characters(text):
            raise InvalidArgumentError(f"{event}: {key}= must be one line of text (no control characters)")
    for param in spec.params:
        value = params.get(param.name)
        if value is None or not value.strip():
            if param.required:
                raise InvalidArgumentError(f"{event}: missing parameter {param.name}=…")
            continue
        if param.choices and value not in param.choices:
            raise InvalidArgumentError(f"{event}: {param.name}={value!r} is not one of {', '.join(param.choices)}")
        if param.kind is ParamKind.AMOUNT:
            parse_amount_param(event, param.name, value)
        if param.kind is ParamKind.DATE:
            parse_day_param(event, param.name, value)


def fire(context: GuardContext) -> str:
    """Fire `context.event` from `context.state` under its guards and return the destination state.

    Raises `EventNotAllowedError` when the event does not leave the current state, a `RuleRefusedError` when a
    guard refuses, `BadInputError` for malformed parameters. Nothing is written anywhere.
    """
    check_params(context.event, context.params)
    global _MACHINE
    model = ProjectModel(state=context.state, context=context)
    # One machine for the process; adding and removing a model is cheap, building a machine is not.
    with _LOCK:
        if _MACHINE is None:
            _MACHINE = build_machine()
        machine = _MACHINE
        machine.add_model(model, initial=context.state)
        try:
            moved = model.trigger(context.event)  # type: ignore[attr-defined]
        except MachineError:
            allowed = ", ".join(allowed_events(context.state)) or "none: it is a final state"
            raise EventNotAllowedError(
                f"project is in {context.state}; events allowed there: {allowed}",
                rule="event_allowed_in_state",
                event=context.event,
                state=context.state,
            ) from None
        finally:
            machine.remove_model(model)
    if not moved:
        raise EventNotAllowedError(
            f"no transition matches {context.params}",
            rule="event_allowed_in_state",
            event=context.event,
            state=context.state,
        )
    return model.state
