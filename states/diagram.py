"""The life cycle drawn as a Mermaid state diagram, from the declaration."""

from __future__ import annotations

from states.lifecycle import DEADLINES, FINAL_STATES, OPEN_STATES, TRANCHE_MILESTONES, TRANSITIONS, EventName, State

APPLICATION, WITHDRAWN, RECOVERY = State.APPLICATION.value, State.WITHDRAWN.value, State.RECOVERY.value


def mermaid() -> str:
    """Return the Mermaid `stateDiagram-v2` source of the life cycle."""
    lines = ["stateDiagram-v2", f"    [*] --> {APPLICATION}"]
    tranche_at = {state: number for number, state in TRANCHE_MILESTONES.items()}
    for transition in TRANSITIONS:
        if transition.event in (EventName.WITHDRAW, EventName.EXTEND):
            continue  # drawn once below as notes: they apply to many states
        label = transition.event + "".join(f" {k}={v}" for k, v in transition.when)
        if transition.event is EventName.LAPSE:  # fired by the sweep: say which deadline
            label += "".join(f" after {g.removesuffix('_passed')}" for g in transition.guards)
        label += "".join(f" [{s.replace('_', ' ')}]" for s in transition.selectors)
        if transition.dest in tranche_at and transition.event is not EventName.LAPSE:
            label += f" (tranche {tranche_at[transition.dest]})"
        for source in transition.sources:
            lines.append(f"    {source} --> {transition.dest}: {label}")
    lines.append(
        f"    note right of {WITHDRAWN}: withdraw reason=… from any open state; to {RECOVERY} when money was released"
    )
    lines.append(f"    note left of {APPLICATION}: open states: {', '.join(OPEN_STATES)}")
    waiting = ", ".join(dict.fromkeys(state for d in DEADLINES for state in d.states))
    lines.append(
        f"    note right of {APPLICATION}: extend until=… reason=… in a state waiting on a deadline: {waiting}"
    )
    lines.extend(f"    {state} --> [*]" for state in FINAL_STATES)
    return "\n".join(lines) + "\n"
