"""The declaration is consistent, and the diagram and the machine are built from it."""

from __future__ import annotations

from states import lifecycle
from states.diagram import mermaid
from states.guards import GUARDS
from states.machine import allowed_events, build_machine


def test_every_guard_named_in_the_declaration_exists() -> None:
    named = {g for t in lifecycle.TRANSITIONS for g in t.guards}
    assert named <= set(GUARDS)
    assert set(GUARDS) <= named, "a guard no transition uses is dead code"


def test_every_state_is_reachable_from_application() -> None:
    reached = {lifecycle.State.APPLICATION}
    frontier = [lifecycle.State.APPLICATION]
    while frontier:
        state = frontier.pop()
        for transition in lifecycle.TRANSITIONS:
            if state in transition.sources and transition.dest not in reached:
                reached.add(transition.dest)
                frontier.append(transition.dest)
    assert reached == set(lifecycle.STATES)


def test_final_states_have_no_events_and_open_states_can_be_withdrawn() -> None:
    for state in lifecycle.FINAL_STATES:
        assert allowed_events(state) == []
    for state in lifecycle.OPEN_STATES:
        assert "withdraw" in allowed_events(state)


def test_tranche_milestones_lie_on_the_main_line_in_order() -> None:
    ranks = [lifecycle.rank(state) for _, state in sorted(lifecycle.TRANCHE_MILESTONES.items())]
    assert None not in ranks
    assert ranks == sorted(ranks)
    assert lifecycle.tranches_reached(lifecycle.State.AGREEMENT) == ()
    assert lifecycle.tranches_reached(lifecycle.State.CONFIGURATION) == (1,)
    assert lifecycle.tranches_reached(lifecycle.State.USAGE_EVALUATION) == (1, 2)
    assert lifecycle.tranches_reached(lifecycle.State.COMPLETED) == (1, 2, 3)
    assert lifecycle.tranches_reached(lifecycle.State.WITHDRAWN) == ()


def test_machine_has_no_auto_transitions() -> None:
    machine = build_machine()
    assert not [e for e in machine.events if e.startswith("to_")]
    assert set(machine.events) == set(lifecycle.EVENTS_BY_NAME)


def test_diagram_draws_every_arrow_of_the_declaration() -> None:
    text = mermaid()
    assert text.startswith("stateDiagram-v2\n")
    for transition in lifecycle.TRANSITIONS:
        if transition.event in ("withdraw", "extend"):
            continue  # notes: they apply to many states
        for source in transition.sources:
            assert f"    {source} --> {transition.dest}: {transition.event}" in text
    assert "withdraw reason=… from any open state; to recovery when money was released" in text
    assert "extend until=… reason=… in a state waiting on a deadline: application, selection" in text
    assert "agreement --> configuration: sign_agreement (tranche 1)" in text
    assert "selection --> waitlisted: select group=B" in text


def test_every_state_and_event_has_a_label_or_summary() -> None:
    assert set(lifecycle.STATE_LABELS) == set(lifecycle.STATES)
    assert all(e.summary for e in lifecycle.EVENTS)


def test_readme_shows_the_diagram_the_declaration_draws() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "```mermaid\n" + mermaid() + "```" in readme
