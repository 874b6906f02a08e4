"""The engine's exceptions, under one root.

    EsmsError                      exit_code
    ├── BadInputError              2   the command or a file is wrong; nothing was changed
    │   ├── MalformedFileError         a campaign, project or settings file (path and key at fault)
    │   ├── UnknownProjectError        (also a LookupError)
    │   ├── UnknownCampaignError       (also a LookupError)
    │   ├── UnknownEventError
    │   ├── UnknownStateError
    │   ├── InvalidArgumentError       a `key=value`, a date, an option value
    │   │   └── InvalidFieldError      one named input (a reason, an actor): front ends name it their way
    │   └── DatabaseNotInitialisedError
    ├── RuleRefusedError           1   a programme rule refused the event; nothing was changed
    │   ├── EventNotAllowedError       the event does not leave the project's current state
    │   ├── DeadlinePassedError
    │   ├── NotYetOpenError
    │   ├── IneligibleError
    │   ├── UsageCriteriaNotMetError
    │   ├── EsmsAlreadyFundedError     one ESMS, one funding
    │   ├── EnvelopeExceededError      the envelope is a limit
    │   ├── RecoveryAmountError        a repayment or waiver outside the balance owed
    │   ├── ReleaseRefusedError        a release by two people that the rules refuse
    │   ├── ForcedMoveRefusedError     a forced move that would break a money rule
    │   └── AmendmentRefusedError      an amendment the project's state does not allow
    ├── ConflictError              3   another process changed the project first; nothing was changed
    ├── OperationalError           4   the database or a server cannot be reached
    └── IntegrityCheckError        5   `esms check` or `esms audit verify` found a broken invariant

Every refusal names the rule and the value that broke it, in one line.
"""

from __future__ import annotations


class EsmsError(Exception):
    """Root of every error the engine reports to a user."""

    exit_code: int = 4

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInputError(EsmsError):
    """The command, an argument or a file is wrong (exit 2)."""

    exit_code = 2


class MalformedFileError(BadInputError):
    """A TOML file is unreadable or breaks its schema; carries the path and the key at fault."""

    def __init__(self, path: str, key: str | None, problem: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


class UnknownProjectError(BadInputError, LookupError):
    """No project has this id."""

    def __init__(self, project_id: str) -> None:
        super().__init__(f"unknown project: {project_id!r} (see `esms project list`)")
        self.project_id = project_id


class UnknownCampaignError(BadInputError, LookupError):
    """No campaign file defines this id."""

    def __init__(self, campaign_id: str, known: list[str]) -> None:
        choices = ", ".join(known) or "none"
        super().__init__(f"unknown campaign: {campaign_id!r} (known: {choices})")
        self.campaign_id = campaign_id


class UnknownEventError(BadInputError):
    """The life cycle declares no event of this name."""

    def __init__(self, event: str, known: list[str]) -> None:
        super().__init__(f"unknown event: {event!r} (events: {', '.join(known)})")
        self.event = event


class UnknownStateError(BadInputError):
    """The life cycle declares no state of this name."""

    def __init__(self, state: str, known: list[str]) -> None:
        super().__init__(f"unknown state: {state!r} (states: {', '.join(known)})")
        self.state = state


class InvalidArgumentError(BadInputError):
    """A command argument is malformed."""


class InvalidFieldError(InvalidArgumentError):
    """One named input is wrong: `field` (e.g. `reason`), what is wrong with it, and the command it was given to.

    The engine does not know how a front end asks for the field: the CLI says `--reason`, a web page its label.
    """

    def __init__(self, field: str, problem: str, *, command: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.command = command
        super().__init__(self.phrase(field))

    def phrase(self, name: str) -> str:
        """The message, with the field called `name` (`--reason` on the command line)."""
        return f"{self.command}: {name} {self.problem}" if self.command else f"{name} {self.problem}"


class DatabaseNotInitialisedError(BadInputError):
    """The database has no schema, or an older one, yet."""


class RuleRefusedError(EsmsError):
    """A programme rule refused an event (exit 1). `rule` names the rule; `event` and `state` give context."""

    exit_code = 1

    def __init__(self, message: str, *, rule: str, event: str | None = None, state: str | None = None) -> None:
        prefix = f"{event} refused: " if event else "refused: "
        super().__init__(prefix + message)
        self.rule = rule
        self.event = event
        self.state = state


class EventNotAllowedError(RuleRefusedError):
    """The event does not leave the project's current state."""


class DeadlinePassedError(RuleRefusedError):
    """A campaign deadline has passed."""


class NotYetOpenError(RuleRefusedError):
    """The step is not open yet."""


class IneligibleError(RuleRefusedError):
    """The project does not meet the campaign's eligibility rules."""


class UsageCriteriaNotMetError(RuleRefusedError):
    """At least one usage criterion is not met."""


class EsmsAlreadyFundedError(RuleRefusedError):
    """An ESMS of the grappe already belongs to another live project."""


class EnvelopeExceededError(RuleRefusedError):
    """The campaign's selections would commit more than its envelope."""


class RecoveryAmountError(RuleRefusedError):
    """A repayment or a waiver is not within the balance owed."""


class ReleaseRefusedError(RuleRefusedError):
    """A tranche cannot be released: same person twice, milestone not reached, already released, or recovery."""


class ForcedMoveRefusedError(RuleRefusedError):
    """A forced move would break a money rule (money released to an end state, an ESMS or envelope rule)."""


class AmendmentRefusedError(RuleRefusedError):
    """An amendment the project's state does not allow: an ended project, or additions once configuration began."""


class ConflictError(EsmsError):
    """Another process changed the project between our read and our write (exit 3): retry the command."""

    exit_code = 3


class OperationalError(EsmsError):
    """The database or another server cannot be reached (exit 4)."""

    exit_code = 4


class IntegrityCheckError(EsmsError):
    """An invariant check found the database inconsistent or tampered with (exit 5)."""

    exit_code = 5
