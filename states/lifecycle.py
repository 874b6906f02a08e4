"""The project life cycle, declared once: states, events and what each event does.

Read this module to know what can happen to a project. Each `Event` below says, on one screen, from which state it
leads where and under which guards (its `arrows`), which parameters it takes and which project fields it records,
which tranche it releases, and which messages it sends to whom. `DEADLINES` says which deadline each state waits on
and what the sweep does when it passes. Everything else is built from these tables: the `transitions` machine, the
CLI's event names, the Mermaid diagram, the engine's writes, the outbox messages, the sweep and `esms check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from states.money import parse_amount_param
from states.text import FIELD_LIMITS, PARAM_LIMIT

# --- States -------------------------------------------------------------------------------------------------


class State(StrEnum):
    """Where a project stands. The values are stored in the database and named by the CLI."""

    APPLICATION = "application"
    SELECTION = "selection"
    NEEDS_STATEMENT = "needs_statement"
    VENDOR_CONTRACT = "vendor_contract"
    AGREEMENT = "agreement"
    CONFIGURATION = "configuration"
    ROLLOUT = "rollout"
    USAGE_EVALUATION = "usage_evaluation"
    COMPLETED = "completed"
    WAITLISTED = "waitlisted"
    REWORK = "rework"
    REJECTED = "rejected"
    LAPSED = "lapsed"
    WITHDRAWN = "withdrawn"
    RECOVERY = "recovery"  # withdrawn or lapsed after money was released: the owner repays it
    RECOVERED = "recovered"


S = State  # short alias for the tables below

#: The main line, in order: a state's rank says how far a project has come (used for tranche milestones).
MAIN_LINE: Final[tuple[State, ...]] = (
    S.APPLICATION,
    S.SELECTION,
    S.NEEDS_STATEMENT,
    S.VENDOR_CONTRACT,
    S.AGREEMENT,
    S.CONFIGURATION,
    S.ROLLOUT,
    S.USAGE_EVALUATION,
    S.COMPLETED,
)
#: States a project can still leave by an event (a withdrawal, at least).
OPEN_STATES: Final[tuple[State, ...]] = (*MAIN_LINE[:-1], S.WAITLISTED)
#: Ends: no event leaves them; only a forced transition can.
FINAL_STATES: Final[tuple[State, ...]] = (S.COMPLETED, S.REWORK, S.REJECTED, S.LAPSED, S.WITHDRAWN, S.RECOVERED)
#: Ends without money: a project there frees its ESMS (they may apply again), unless money was released to it.
ENDS_WITHOUT_MONEY: Final[tuple[State, ...]] = (S.REWORK, S.REJECTED, S.WITHDRAWN, S.LAPSED)
#: States a project owes back released money in (or has repaid it).
RECOVERY_STATES: Final[tuple[State, ...]] = (S.RECOVERY, S.RECOVERED)
STATES: Final[tuple[State, ...]] = tuple(State)

#: French labels, for what users read.
STATE_LABELS: Final[dict[str, str]] = {
    S.APPLICATION: "candidature",
    S.SELECTION: "instruction",
    S.NEEDS_STATEMENT: "expression de besoins (RESAH)",
    S.VENDOR_CONTRACT: "contrat éditeur",
    S.AGREEMENT: "convention",
    S.CONFIGURATION: "paramétrage",
    S.ROLLOUT: "généralisation du déploiement",
    S.USAGE_EVALUATION: "évaluation des critères d'usage",
    S.COMPLETED: "terminé",
    S.WAITLISTED: "liste d'attente (groupe B)",
    S.REWORK: "à retravailler (groupe C)",
    S.REJECTED: "non recevable (groupe D)",
    S.LAPSED: "caduc",
    S.WITHDRAWN: "abandonné",
    S.RECOVERY: "reversement",
    S.RECOVERED: "reversement soldé",
}


# --- What an event can do: the vocabulary of the declaration ----------------------------------------------------


class EventName(StrEnum):
    """The events of the life cycle, and the two audit events that are not fired (`register`, `force`)."""

    SUBMIT = "submit"
    SELECT = "select"
    PROMOTE = "promote"
    FILE_NEEDS = "file_needs"
    SIGN_CONTRACT = "sign_contract"
    SIGN_AGREEMENT = "sign_agreement"
    FINISH_CONFIGURATION = "finish_configuration"
    FINISH_ROLLOUT = "finish_rollout"
    VERIFY_USAGE = "verify_usage"
    WITHDRAW = "withdraw"
    LAPSE = "lapse"
    EXTEND = "extend"
    RECORD_REPAYMENT = "record_repayment"
    WAIVE_RECOVERY = "waive_recovery"
    # Audit rows only: a registration, a move that bypassed the guards, a tranche released on two people's word.
    REGISTER = "register"
    FORCE = "force"
    RELEASE = "release"
    AMEND = "amend"
    PURGE = "purge"  # personal data pseudonymised after the retention period


E = EventName


class Template(StrEnum):
    """The e-mails the engine sends; each names its templates `<value>.txt` and `<value>.html`."""

    SUBMISSION_RECEIVED = "submission_received"
    SELECTION_RESULT = "selection_result"
    PROMOTED = "promoted"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"
    TRANCHE_RELEASED = "tranche_released"
    FORCED = "forced"
    DEADLINE_EXTENDED = "deadline_extended"
    RECOVERY_DUE = "recovery_due"
    REPAYMENT_RECORDED = "repayment_recorded"
    RECOVERY_WAIVED = "recovery_waived"
    REMINDER = "reminder"
    DIGEST = "digest"
    PROJECT_AMENDED = "project_amended"


class MessageKey(StrEnum):
    """What makes a message unique (its outbox idempotency key), so that it is queued once whatever is retried."""

    PER_CHANGE = "change"  # one per audit row: `p<id>:<event>:<seq>`
    PER_CHANGE_TEMPLATE = "change_template"  # a second message of one audit row: `p<id>:<event>:<seq>:<template>`
    PER_DEADLINE = "deadline"  # one per missed deadline: `p<id>:lapse:<deadline>`
    PER_TRANCHE = "tranche"  # a tranche is released once, so told once: `p<id>:tranche:<n>`


class Context(StrEnum):
    """A piece of context a message needs besides the project and its campaign.

    A calendar key (`selection_deadline`…) is the campaign's date for it; the others come from the change.
    """

    SELECTION_DEADLINE = "selection_deadline"
    AGREEMENT_DEADLINE = "agreement_deadline"
    NEEDS_STATEMENT_OPENS = "needs_statement_opens"
    GROUP = "group"  # the selection group the change placed the project in
    REASON = "reason"  # the change's reason (a withdrawal's)
    MISSED_DEADLINE = "deadline"  # the deadline the project's previous state waited on (name, label, date)
    RECOVERY = "recovery"  # the money owed back: released, repaid, waived, balance (in cents)
    AMOUNT = "amount_cents"  # the amount the event carried (a repayment, a waiver), in cents
    EXTENSION = "extension"  # the deadline extended: name, label, previous and new date


CALENDAR_CONTEXT: Final[frozenset[Context]] = frozenset(
    {Context.SELECTION_DEADLINE, Context.AGREEMENT_DEADLINE, Context.NEEDS_STATEMENT_OPENS}
)


@dataclass(frozen=True, kw_only=True)
class Message:
    """A message an event sends to the project's owner: its template, its uniqueness, the context it needs."""

    template: Template
    key: MessageKey = MessageKey.PER_CHANGE
    context: tuple[Context, ...] = ()


def message_key(
    scheme: MessageKey,
    project_id: int,
    *,
    event: str,
    seq: int,
    deadline: str = "",
    tranche: int = 0,
    template: str = "",
) -> str:
    """The outbox idempotency key of a message (the engine writes it, `esms check` expects it)."""
    if scheme is MessageKey.PER_CHANGE_TEMPLATE:
        return f"p{project_id}:{event}:{seq}:{template}"
    if scheme is MessageKey.PER_DEADLINE:
        return f"p{project_id}:lapse:{deadline}"
    if scheme is MessageKey.PER_TRANCHE:
        return f"p{project_id}:tranche:{tranche}"
    return f"p{project_id}:{event}:{seq}"


#: Sent for every tranche a change releases, whatever the event (a release by two people included).
TRANCHE_RELEASED_MESSAGE: Final = Message(template=Template.TRANCHE_RELEASED, key=MessageKey.PER_TRANCHE)
#: Sent for every forced move, telling the owner the new state (the reason only when the operator shares it).
FORCED_MESSAGE: Final = Message(template=Template.FORCED)
#: Sent when a project enters recovery: the amount to repay and why.
RECOVERY_DUE_MESSAGE: Final = Message(
    template=Template.RECOVERY_DUE, key=MessageKey.PER_CHANGE_TEMPLATE, context=(Context.RECOVERY,)
)


class ParamKind(StrEnum):
    """How a parameter's value is read."""

    TEXT = "text"
    AMOUNT = "amount"  # euros, a plain ASCII decimal with at most two decimals, more than zero
    DATE = "date"  # a calendar day, YYYY-MM-DD


@dataclass(frozen=True, kw_only=True)
class Param:
    """A `key=value` argument an event takes.

    `choices` restricts the value; `records` names the project field the value is kept in; `adds_to` names the
    project field (in cents) an amount is added to; `is_reason` makes the value the change's reason in the audit
    too (a withdrawal's reason).
    """

    name: str
    required: bool = True
    kind: ParamKind = ParamKind.TEXT
    choices: tuple[str, ...] = ()
    records: str | None = None
    adds_to: str | None = None
    is_reason: bool = False
    document: bool = False  # a piece of evidence (a reference, an invoice): kept in the project's documents

    @property
    def max_length(self) -> int:
        """The longest value: the size of the field it is recorded in, or of the audit's reason, else a default."""
        if self.records is not None:
            return FIELD_LIMITS.get(self.records, PARAM_LIMIT)
        return FIELD_LIMITS["reason"] if self.is_reason else PARAM_LIMIT


@dataclass(frozen=True, kw_only=True)
class Arrow:
    """One way an event leaves `sources`: to `dest` when every guard passes.

    Several arrows of one event are tried in order; `when` (a parameter's value, `select group=A`) and `selectors`
    (named facts such as `money_released`, `states.guards.SELECTORS`) choose among them without refusing
    anything. Guards are named rules (`states.guards.GUARDS`) that refuse the event when broken. `messages` are
    sent besides the event's own when this arrow is taken.
    """

    sources: tuple[State, ...]
    dest: State
    guards: tuple[str, ...] = ()
    when: tuple[tuple[str, str], ...] = ()
    selectors: tuple[str, ...] = ()
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Event:
    """An event the programme fires on a project, and everything it does.

    `free_params` lets an event take parameters named by the campaign (the usage criteria of `verify_usage`).
    `releases` is the tranche the event releases on success (its milestone is the arrow's `dest`), and a released
    tranche always sends `TRANCHE_RELEASED_MESSAGE` besides the event's own `messages`.
    """

    name: EventName
    summary: str
    arrows: tuple[Arrow, ...]
    params: tuple[Param, ...] = ()
    free_params: bool = False
    releases: int | None = None
    messages: tuple[Message, ...] = ()
    sets: tuple[tuple[str, str], ...] = ()  # project fields set to a fixed value (`promote`: group A)
    sets_deadline: SetsDeadline | None = None

    def param(self, name: str) -> Param | None:
        """Return the declared parameter called `name`, if any."""
        return next((p for p in self.params if p.name == name), None)

    def recorded(self, params: dict[str, str]) -> dict[str, str]:
        """The project fields this event records: from its parameters, and the fixed values it sets."""
        return {**{p.records: params[p.name] for p in self.params if p.records and p.name in params}, **dict(self.sets)}

    def documents(self, params: dict[str, str]) -> list[tuple[str, str]]:
        """The (key, value) pairs of evidence this event's parameters carry, kept in the project's documents."""
        return [(p.name, params[p.name]) for p in self.params if p.document and params.get(p.name)]

    @property
    def commits(self) -> bool:
        """Whether the event decides on the programme's money or ESMS (its firings are serialised)."""
        return any(g in COMMITMENT_GUARDS for a in self.arrows for g in a.guards)

    def amounts(self, params: dict[str, str]) -> dict[str, int]:
        """The project fields (in cents) this event adds its amount parameters to."""
        return {
            p.adds_to: parse_amount_param(self.name, p.name, params[p.name])
            for p in self.params
            if p.adds_to and p.name in params
        }

    def reason(self, params: dict[str, str]) -> str | None:
        """The change's reason carried by a parameter (a withdrawal's), if any."""
        return next((params.get(p.name) for p in self.params if p.is_reason), None)


# --- Calendar: which deadline each state waits on, and what the sweep does when it passes --------------------


@dataclass(frozen=True, kw_only=True)
class Deadline:
    """A calendar deadline and the states that wait on it.

    When it passes, the sweep fires `on_pass` on projects still in `states` (None: they stay, flagged in the
    digest). Owners in `reminded` states are reminded at the campaign's `reminders.days_before` offsets.
    """

    key: str
    label: str  # French, for what users read
    states: tuple[State, ...]
    reminded: tuple[State, ...]
    on_pass: EventName | None
    todo: str  # French: what the owner must still do before it
    #: French: the steps before the deadline, each with the state it is done in, in order; a reminder lists only
    #: the steps still ahead of the project (from its current state on). Empty: `todo` says it all.
    steps: tuple[tuple[State, str], ...] = ()

    def todo_from(self, state: str) -> str:
        """What the owner must still do before the deadline, from `state` on (in French)."""
        if not self.steps:
            return self.todo
        states = [step_state for step_state, _ in self.steps]
        start = states.index(State(state)) if state in states else 0
        remaining = [text for _, text in self.steps[start:]]
        if len(remaining) == 1:
            return remaining[0]
        return ", ".join(remaining[:-1]) + " et " + remaining[-1]


DEADLINES: Final[tuple[Deadline, ...]] = (
    Deadline(
        key="application_deadline",
        label="date limite de dépôt des candidatures",
        states=(S.APPLICATION,),
        reminded=(S.APPLICATION,),
        on_pass=E.LAPSE,
        todo="déposer votre candidature complète",
    ),
    Deadline(
        key="selection_deadline",
        label="date limite de sélection des projets",
        states=(S.SELECTION,),
        reminded=(),  # the ARS decides, the owner has nothing to do: the digest flags undecided projects
        on_pass=None,
        todo="",
    ),
    Deadline(
        key="agreement_deadline",
        label="date limite de signature de la convention",
        states=(S.NEEDS_STATEMENT, S.VENDOR_CONTRACT, S.AGREEMENT, S.WAITLISTED),
        reminded=(S.NEEDS_STATEMENT, S.VENDOR_CONTRACT, S.AGREEMENT),
        on_pass=E.LAPSE,
        todo="déposer l'expression de besoins, contractualiser avec un éditeur et signer la convention",
        steps=(
            (S.NEEDS_STATEMENT, "déposer l'expression de besoins sur la plateforme du RESAH"),
            (S.VENDOR_CONTRACT, "contractualiser avec un éditeur de DUI"),
            (S.AGREEMENT, "signer la convention de financement avec l'ARS"),
        ),
    ),
    Deadline(
        key="completion_deadline",  # a project's own: its agreement day + the campaign's `completion_months`
        label="date limite d'achèvement du projet",
        states=(S.CONFIGURATION, S.ROLLOUT, S.USAGE_EVALUATION),
        reminded=(S.CONFIGURATION, S.ROLLOUT, S.USAGE_EVALUATION),
        on_pass=E.LAPSE,
        todo="achever le paramétrage et le déploiement, puis faire vérifier les critères d'usage",
        steps=(
            (S.CONFIGURATION, "achever le paramétrage de la solution"),
            (S.ROLLOUT, "généraliser le déploiement à tous les ESMS de la grappe"),
            (S.USAGE_EVALUATION, "faire vérifier les critères d'usage par l'ARS"),
        ),
    ),
)
DEADLINES_BY_KEY: Final[dict[str, Deadline]] = {d.key: d for d in DEADLINES}
#: The deadline a project in a given state waits on.
DEADLINE_BY_STATE: Final[dict[str, str]] = {state: d.key for d in DEADLINES for state in d.states}


class DeadlineRule(StrEnum):
    """How an event sets a project's own date for a deadline."""

    COMPLETION = "completion"  # the event's day + the campaign's `completion_months` (same day, or month end)
    PROMOTION_GRACE = "promotion_grace"  # the later of the campaign's date and the day + `promotion_grace_days`
    EXTENSION = "extension"  # the `until=` date given, for the deadline the project's state waits on


@dataclass(frozen=True, kw_only=True)
class SetsDeadline:
    """An event's effect on the project's own calendar: which deadline (None: the one its state waits on), how."""

    key: str | None
    rule: DeadlineRule


# --- Events ---------------------------------------------------------------------------------------------------

#: Guards that read the programme's money or ESMS across projects.
COMMITMENT_GUARDS: Final = frozenset({"esms_not_funded_elsewhere", "fits_envelope"})

#: The states that wait on the agreement deadline, and on the completion deadline.
_AGREEMENT_WAIT: Final = DEADLINES_BY_KEY["agreement_deadline"].states
_COMPLETION_WAIT: Final = DEADLINES_BY_KEY["completion_deadline"].states


def _lapse_arrows(sources: tuple[State, ...], passed: str) -> tuple[Arrow, Arrow]:
    """The arrows of a missed deadline: the project ends, or goes to recovery when it received money.

    Money is released from the agreement on, or to a project later moved back by hand: its owner is told what to
    repay.
    """
    return (
        Arrow(
            sources=sources,
            dest=S.RECOVERY,
            guards=(passed,),
            selectors=("money_released",),
            messages=(RECOVERY_DUE_MESSAGE,),
        ),
        Arrow(sources=sources, dest=S.LAPSED, guards=(passed,), selectors=("nothing_released",)),
    )


#: A repayment or a waiver: the balance reaching zero ends the recovery; the amount never exceeds the balance.
_RECOVERY_ARROWS: Final = (
    Arrow(
        sources=(S.RECOVERY,),
        dest=S.RECOVERED,
        guards=("amount_within_balance",),
        selectors=("settles_balance",),
    ),
    Arrow(sources=(S.RECOVERY,), dest=S.RECOVERY, guards=("amount_within_balance",), selectors=("leaves_balance",)),
)

EVENTS: Final[tuple[Event, ...]] = (
    Event(
        name=E.SUBMIT,
        summary="the owner submits the application",
        arrows=(
            Arrow(
                sources=(S.APPLICATION,),
                dest=S.SELECTION,
                guards=("call_is_open", "on_or_before_application_deadline", "eligible", "esms_not_funded_elsewhere"),
            ),
        ),
        messages=(Message(template=Template.SUBMISSION_RECEIVED, context=(Context.SELECTION_DEADLINE,)),),
    ),
    Event(
        name=E.SELECT,
        summary="the ARS places the application in group A, B, C or D",
        arrows=(
            Arrow(
                sources=(S.SELECTION,),
                dest=S.NEEDS_STATEMENT,
                guards=(
                    "applications_closed",
                    "on_or_before_selection_deadline",
                    "esms_not_funded_elsewhere",
                    "fits_envelope",
                ),
                when=(("group", "A"),),
            ),
            *(
                Arrow(
                    sources=(S.SELECTION,),
                    dest=dest,
                    guards=("applications_closed", "on_or_before_selection_deadline"),
                    when=(("group", group),),
                )
                for group, dest in (("B", S.WAITLISTED), ("C", S.REWORK), ("D", S.REJECTED))
            ),
        ),
        params=(Param(name="group", choices=("A", "B", "C", "D"), records="selection_group"),),
        messages=(
            Message(
                template=Template.SELECTION_RESULT,
                context=(Context.GROUP, Context.AGREEMENT_DEADLINE, Context.NEEDS_STATEMENT_OPENS),
            ),
        ),
    ),
    Event(
        name=E.PROMOTE,
        summary="a waitlisted (group B) project takes a freed place",
        arrows=(
            Arrow(
                sources=(S.WAITLISTED,),
                dest=S.NEEDS_STATEMENT,
                guards=("on_or_before_agreement_deadline", "esms_not_funded_elsewhere", "fits_envelope"),
            ),
        ),
        messages=(Message(template=Template.PROMOTED, context=(Context.AGREEMENT_DEADLINE,)),),
        sets=(("selection_group", "A"),),  # the history keeps that it came from group B
        sets_deadline=SetsDeadline(key="agreement_deadline", rule=DeadlineRule.PROMOTION_GRACE),
    ),
    Event(
        name=E.FILE_NEEDS,
        summary="the owner files the needs statement on the RESAH platform",
        arrows=(Arrow(sources=(S.NEEDS_STATEMENT,), dest=S.VENDOR_CONTRACT, guards=("needs_statement_open",)),),
        params=(Param(name="reference", records="needs_reference", document=True),),
    ),
    Event(
        name=E.SIGN_CONTRACT,
        summary="the owner signs the contract with a DUI vendor",
        arrows=(Arrow(sources=(S.VENDOR_CONTRACT,), dest=S.AGREEMENT),),
        params=(Param(name="vendor", records="vendor", document=True),),
    ),
    Event(
        name=E.SIGN_AGREEMENT,
        summary="the ARS signs the funding agreement",
        arrows=(Arrow(sources=(S.AGREEMENT,), dest=S.CONFIGURATION, guards=("on_or_before_agreement_deadline",)),),
        releases=1,
        sets_deadline=SetsDeadline(key="completion_deadline", rule=DeadlineRule.COMPLETION),
    ),
    Event(
        name=E.FINISH_CONFIGURATION,
        summary="end of configuration, invoice received",
        arrows=(Arrow(sources=(S.CONFIGURATION,), dest=S.ROLLOUT),),
        params=(Param(name="invoice", records="configuration_invoice", document=True),),
        releases=2,
    ),
    Event(
        name=E.FINISH_ROLLOUT,
        summary="end of rollout to every ESMS, invoice received",
        arrows=(Arrow(sources=(S.ROLLOUT,), dest=S.USAGE_EVALUATION),),
        params=(Param(name="invoice", records="rollout_invoice", document=True),),
    ),
    Event(
        name=E.VERIFY_USAGE,
        summary="the ARS checks the campaign's usage criteria",
        arrows=(Arrow(sources=(S.USAGE_EVALUATION,), dest=S.COMPLETED, guards=("usage_criteria_met",)),),
        free_params=True,
        releases=3,
    ),
    Event(
        name=E.WITHDRAW,
        summary="the owner gives up the project",
        arrows=(
            Arrow(
                sources=OPEN_STATES,
                dest=S.RECOVERY,
                selectors=("money_released",),
                messages=(RECOVERY_DUE_MESSAGE,),
            ),
            Arrow(sources=OPEN_STATES, dest=S.WITHDRAWN, selectors=("nothing_released",)),
        ),
        params=(Param(name="reason", records="withdrawal_reason", is_reason=True),),
        messages=(Message(template=Template.WITHDRAWN, context=(Context.REASON,)),),
    ),
    Event(
        name=E.LAPSE,
        summary="a deadline passed before the project acted (fired by the scheduler's sweep)",
        arrows=(
            *_lapse_arrows((S.APPLICATION,), "application_deadline_passed"),
            *_lapse_arrows(_AGREEMENT_WAIT, "agreement_deadline_passed"),
            *_lapse_arrows(_COMPLETION_WAIT, "completion_deadline_passed"),
        ),
        messages=(Message(template=Template.LAPSED, key=MessageKey.PER_DEADLINE, context=(Context.MISSED_DEADLINE,)),),
    ),
    Event(
        name=E.EXTEND,
        summary="an amendment (avenant) gives the project a later date for the deadline its state waits on",
        arrows=tuple(
            Arrow(sources=(state,), dest=state, guards=("extends_deadline",))
            for deadline in DEADLINES
            for state in deadline.states
        ),
        params=(
            Param(name="until", kind=ParamKind.DATE, document=True),
            Param(name="reason", is_reason=True),
        ),
        messages=(Message(template=Template.DEADLINE_EXTENDED, context=(Context.EXTENSION, Context.REASON)),),
        sets_deadline=SetsDeadline(key=None, rule=DeadlineRule.EXTENSION),
    ),
    Event(
        name=E.RECORD_REPAYMENT,
        summary="the owner repaid part or all of the released money it owes",
        arrows=_RECOVERY_ARROWS,
        params=(
            Param(name="amount", kind=ParamKind.AMOUNT, adds_to="repaid_cents"),
            Param(name="reference", required=False, document=True),
        ),
        messages=(Message(template=Template.REPAYMENT_RECORDED, context=(Context.AMOUNT, Context.RECOVERY)),),
    ),
    Event(
        name=E.WAIVE_RECOVERY,
        summary="the programme decides not to claim part of the money owed",
        arrows=_RECOVERY_ARROWS,
        params=(
            Param(name="amount", kind=ParamKind.AMOUNT, adds_to="waived_cents"),
            Param(name="reason", is_reason=True),
        ),
        messages=(Message(template=Template.RECOVERY_WAIVED, context=(Context.AMOUNT, Context.RECOVERY)),),
    ),
)
EVENTS_BY_NAME: Final[dict[str, Event]] = {e.name: e for e in EVENTS}


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One arrow with its event, as the `transitions` machine, the diagram and `esms check` read it."""

    event: EventName
    sources: tuple[State, ...]
    dest: State
    guards: tuple[str, ...] = ()
    when: tuple[tuple[str, str], ...] = ()
    selectors: tuple[str, ...] = ()
    messages: tuple[Message, ...] = ()


TRANSITIONS: Final[tuple[Transition, ...]] = tuple(
    Transition(
        event=e.name,
        sources=a.sources,
        dest=a.dest,
        guards=a.guards,
        when=a.when,
        selectors=a.selectors,
        messages=a.messages,
    )
    for e in EVENTS
    for a in e.arrows
)


def declared_messages(event: str, source: str | None, dest: str) -> tuple[Message, ...]:
    """The messages a change sends besides released tranches: the event's own, then the arrow's taken.

    A forced move sends `FORCED_MESSAGE`; a registration and a release by two people send nothing of their own.
    """
    if event == E.FORCE:
        return (FORCED_MESSAGE,)
    spec = EVENTS_BY_NAME.get(event)
    if spec is None:
        return ()
    arrow = next((t for t in TRANSITIONS if t.event == event and source in t.sources and t.dest == dest), None)
    return spec.messages + (arrow.messages if arrow else ())


# --- Money: the milestone of each tranche ----------------------------------------------------------------------

#: Tranche number → the state whose reaching is its milestone (40 % at the agreement, 40 % at the end of
#: configuration, 20 % once usage is verified): the `dest` of the event that releases it. A forced move releases
#: nothing; `esms release` releases, on two people's word, a tranche whose milestone the project has reached.
TRANCHE_MILESTONES: Final[dict[int, State]] = {
    e.releases: arrow.dest for e in EVENTS if e.releases is not None for arrow in e.arrows
}


def rank(state: str) -> int | None:
    """Return how far along the main line `state` is, or None for a state off it."""
    try:
        return MAIN_LINE.index(State(state))
    except ValueError:
        return None


def tranches_reached(state: str) -> tuple[int, ...]:
    """Return the tranche numbers whose milestone `state` has reached on the main line."""
    reached = rank(state)
    if reached is None:
        return ()
    return tuple(n for n, milestone in sorted(TRANCHE_MILESTONES.items()) if MAIN_LINE.index(milestone) <= reached)


def tranches_released_by(event: str, params: dict[str, str]) -> tuple[int, ...]:
    """The tranches a change releases: the event's own, or the one a release by two people names.

    A forced move releases nothing: moving a state by hand is not evidence (`esms release` is the way).
    """
    if event == E.RELEASE:
        return (int(params["tranche"]),)
    spec = EVENTS_BY_NAME.get(event)
    return (spec.releases,) if spec is not None and spec.releases is not None else ()
