"""The project life cycle, declared once.

Read this module to know what can happen to a project: which events exist, from which state they lead where,
under which guards, which tranche a state releases, and which deadline a state waits on. Everything else in the
engine is built from these tables: the `transitions` machine, the CLI's event names, the Mermaid diagram, the
deadline sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# --- States -------------------------------------------------------------------------------------------------

APPLICATION: Final = "application"
SELECTION: Final = "selection"
NEEDS_STATEMENT: Final = "needs_statement"
VENDOR_CONTRACT: Final = "vendor_contract"
AGREEMENT: Final = "agreement"
CONFIGURATION: Final = "configuration"
ROLLOUT: Final = "rollout"
USAGE_EVALUATION: Final = "usage_evaluation"
COMPLETED: Final = "completed"
WAITLISTED: Final = "waitlisted"
REWORK: Final = "rework"
REJECTED: Final = "rejected"
LAPSED: Final = "lapsed"
WITHDRAWN: Final = "withdrawn"

#: The main line, in order: a state's rank says how far a project has come (used for tranche milestones).
MAIN_LINE: Final[tuple[str, ...]] = (
    APPLICATION,
    SELECTION,
    NEEDS_STATEMENT,
    VENDOR_CONTRACT,
    AGREEMENT,
    CONFIGURATION,
    ROLLOUT,
    USAGE_EVALUATION,
    COMPLETED,
)
#: States a project can still leave by an event (a withdrawal, at least).
OPEN_STATES: Final[tuple[str, ...]] = (*MAIN_LINE[:-1], WAITLISTED)
#: Ends: no event leaves them; only a forced transition can.
FINAL_STATES: Final[tuple[str, ...]] = (COMPLETED, REWORK, REJECTED, LAPSED, WITHDRAWN)
STATES: Final[tuple[str, ...]] = (*MAIN_LINE, WAITLISTED, REWORK, REJECTED, LAPSED, WITHDRAWN)

#: French labels, for what users read.
STATE_LABELS: Final[dict[str, str]] = {
    APPLICATION: "candidature",
    SELECTION: "instruction",
    NEEDS_STATEMENT: "expression de besoins (RESAH)",
    VENDOR_CONTRACT: "contrat éditeur",
    AGREEMENT: "convention",
    CONFIGURATION: "paramétrage",
    ROLLOUT: "généralisation du déploiement",
    USAGE_EVALUATION: "évaluation des critères d'usage",
    COMPLETED: "terminé",
    WAITLISTED: "liste d'attente (groupe B)",
    REWORK: "à retravailler (groupe C)",
    REJECTED: "non recevable (groupe D)",
    LAPSED: "caduc",
    WITHDRAWN: "abandonné",
}


# --- Events -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Param:
    """A `key=value` argument an event takes.

    `choices` restricts the value; `records` names the project field the value is kept in.
    """

    name: str
    required: bool = True
    choices: tuple[str, ...] = ()
    records: str | None = None


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One arrow of the life cycle: `event` leads from each of `sources` to `dest` when every guard passes.

    `when` selects this arrow among several of the same event by the value of a parameter (`select group=A`).
    Guards are named; `states.guards.GUARDS` holds them.
    """

    event: str
    sources: tuple[str, ...]
    dest: str
    guards: tuple[str, ...] = ()
    when: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Event:
    """An event the programme fires on a project, with the parameters it takes.

    `free_params` lets an event take parameters named by the campaign (the usage criteria of `verify_usage`).
    `notify` names the messages the owner receives when the event succeeds (a released tranche always sends
    `tranche_released` besides).
    """

    name: str
    summary: str
    params: tuple[Param, ...] = ()
    free_params: bool = False
    notify: tuple[str, ...] = ()

    def param(self, name: str) -> Param | None:
        """Return the declared parameter called `name`, if any."""
        return next((p for p in self.params if p.name == name), None)


EVENTS: Final[tuple[Event, ...]] = (
    Event(name="submit", summary="the owner submits the application", notify=("submission_received",)),
    Event(
        name="select",
        summary="the ARS places the application in group A, B, C or D",
        params=(Param(name="group", choices=("A", "B", "C", "D"), records="selection_group"),),
        notify=("selection_result",),
    ),
    Event(name="promote", summary="a waitlisted (group B) project takes a freed place", notify=("promoted",)),
    Event(
        name="file_needs",
        summary="the owner files the needs statement on the RESAH platform",
        params=(Param(name="reference", records="needs_reference"),),
    ),
    Event(
        name="sign_contract",
        summary="the owner signs the contract with a DUI vendor",
        params=(Param(name="vendor", records="vendor"),),
    ),
    Event(name="sign_agreement", summary="the ARS signs the funding agreement"),
    Event(
        name="finish_configuration",
        summary="end of configuration, invoice received",
        params=(Param(name="invoice", records="configuration_invoice"),),
    ),
    Event(
        name="finish_rollout",
        summary="end of rollout to every ESMS, invoice received",
        params=(Param(name="invoice", records="rollout_invoice"),),
    ),
    Event(
        name="verify_usage",
        summary="the ARS checks the campaign's usage criteria",
        free_params=True,
    ),
    Event(
        name="withdraw",
        summary="the owner gives up the project",
        params=(Param(name="reason", records="withdrawal_reason"),),
        notify=("withdrawn",),
    ),
    Event(
        name="lapse",
        summary="a deadline passed before the project acted (fired by the scheduler's sweep)",
        notify=("lapsed",),
    ),
)
EVENTS_BY_NAME: Final[dict[str, Event]] = {e.name: e for e in EVENTS}

TRANSITIONS: Final[tuple[Transition, ...]] = (
    Transition(
        event="submit",
        sources=(APPLICATION,),
        dest=SELECTION,
        guards=("call_is_open", "on_or_before_application_deadline", "eligible"),
    ),
    *(
        Transition(
            event="select",
            sources=(SELECTION,),
            dest=dest,
            guards=("applications_closed", "on_or_before_selection_deadline"),
            when=(("group", group),),
        )
        for group, dest in (("A", NEEDS_STATEMENT), ("B", WAITLISTED), ("C", REWORK), ("D", REJECTED))
    ),
    Transition(
        event="promote",
        sources=(WAITLISTED,),
        dest=NEEDS_STATEMENT,
        guards=("on_or_before_agreement_deadline",),
    ),
    Transition(
        event="file_needs",
        sources=(NEEDS_STATEMENT,),
        dest=VENDOR_CONTRACT,
        guards=("needs_statement_open",),
    ),
    Transition(event="sign_contract", sources=(VENDOR_CONTRACT,), dest=AGREEMENT),
    Transition(
        event="sign_agreement",
        sources=(AGREEMENT,),
        dest=CONFIGURATION,
        guards=("on_or_before_agreement_deadline",),
    ),
    Transition(event="finish_configuration", sources=(CONFIGURATION,), dest=ROLLOUT),
    Transition(event="finish_rollout", sources=(ROLLOUT,), dest=USAGE_EVALUATION),
    Transition(
        event="verify_usage",
        sources=(USAGE_EVALUATION,),
        dest=COMPLETED,
        guards=("usage_criteria_met",),
    ),
    Transition(event="withdraw", sources=OPEN_STATES, dest=WITHDRAWN),
    Transition(event="lapse", sources=(APPLICATION,), dest=LAPSED, guards=("application_deadline_passed",)),
    Transition(
        event="lapse",
        sources=(NEEDS_STATEMENT, VENDOR_CONTRACT, AGREEMENT, WAITLISTED),
        dest=LAPSED,
        guards=("agreement_deadline_passed",),
    ),
)


# --- Money: which state releases which tranche -----------------------------------------------------------------

#: Tranche number → the state whose reaching releases it (40 % at the agreement, 40 % at the end of
#: configuration, 20 % once usage is verified). A forced move releases every tranche whose milestone the target
#: state has reached on the main line; a move backwards releases nothing and undoes nothing.
TRANCHE_MILESTONES: Final[dict[int, str]] = {1: CONFIGURATION, 2: ROLLOUT, 3: COMPLETED}


# --- Calendar: which deadline each state waits on, and what the sweep does when it passes --------------------


@dataclass(frozen=True, kw_only=True)
class Deadline:
    """A calendar deadline and the states that wait on it.

    When it passes, the sweep fires `on_pass` on projects still in `states` (None: they stay, flagged in the
    digest). Owners in `reminded` states are reminded at the campaign's `reminders.days_before` offsets.
    """

    key: str
    label: str  # French, for what users read
    states: tuple[str, ...]
    reminded: tuple[str, ...]
    on_pass: str | None
    todo: str  # French: what the owner must still do before it


DEADLINES: Final[tuple[Deadline, ...]] = (
    Deadline(
        key="application_deadline",
        label="date limite de dépôt des candidatures",
        states=(APPLICATION,),
        reminded=(APPLICATION,),
        on_pass="lapse",
        todo="déposer votre candidature complète",
    ),
    Deadline(
        key="selection_deadline",
        label="date limite de sélection des projets",
        states=(SELECTION,),
        reminded=(),  # the ARS decides, the owner has nothing to do: the digest flags undecided projects
        on_pass=None,
        todo="",
    ),
    Deadline(
        key="agreement_deadline",
        label="date limite de signature de la convention",
        states=(NEEDS_STATEMENT, VENDOR_CONTRACT, AGREEMENT, WAITLISTED),
        reminded=(NEEDS_STATEMENT, VENDOR_CONTRACT, AGREEMENT),
        on_pass="lapse",
        todo="déposer l'expression de besoins, contractualiser avec un éditeur et signer la convention",
    ),
)
DEADLINES_BY_KEY: Final[dict[str, Deadline]] = {d.key: d for d in DEADLINES}
#: Campaign calendar keys that are deadlines (inclusive: the whole day in the campaign's time zone).
DEADLINE_KEYS: Final[tuple[str, ...]] = tuple(DEADLINES_BY_KEY)
#: The deadline a project in a given state waits on.
DEADLINE_BY_STATE: Final[dict[str, str]] = {state: d.key for d in DEADLINES for state in d.states}


def rank(state: str) -> int | None:
    """Return how far along the main line `state` is, or None for a state off it."""
    try:
        return MAIN_LINE.index(state)
    except ValueError:
        return None


def tranches_reached(state: str) -> tuple[int, ...]:
    """Return the tranche numbers whose milestone `state` has reached on the main line."""
    reached = rank(state)
    if reached is None:
        return ()
    return tuple(n for n, milestone in TRANCHE_MILESTONES.items() if MAIN_LINE.index(milestone) <= reached)
