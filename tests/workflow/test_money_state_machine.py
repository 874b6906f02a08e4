"""Random sequences of events, forced moves, releases, repayments and waivers keep the programme's money defensible.

A Hypothesis state machine drives the engine in-process (`Workflow` with a simulated clock) over a few projects,
some sharing ESMS, in a campaign whose envelope fits only some of them. Refusals are fine; after every step the
invariants of issue 10 must hold: no tranche released twice (nor undone), released ≤ total, balance ≥ 0,
committed ≤ envelope, no ESMS in two live projects, and `esms check` clean.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import Session, col, select

from states import lifecycle
from states.errors import EsmsError
from tests.conftest import CONFIG_DIR, _postgres_schema, _postgres_url, examples, write_project
from workflow.campaigns import Campaign, load_campaigns
from workflow.check import check
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.models import Esms, Project, Tranche
from workflow.programme import committed_cents, esms_held
from workflow.project_file import ProjectSpec, load_project_file
from workflow.sweep import sweep

PARIS = ZoneInfo("Europe/Paris")
SMALL = "small-2021"
#: 375 000 + 580 000 EUR: the two sizes of project below fit it exactly once each.
ENVELOPE = "955000"
NAMES = ("ars", " ARS ", "dg", "Directrice")

#: Instants around the campaign calendar (hdf-2021's), and anywhere between.
KEY_INSTANTS = [
    datetime(2021, 2, 14, 23, 59, 59, tzinfo=PARIS),
    datetime(2021, 2, 15, 0, 0, tzinfo=PARIS),
    datetime(2021, 3, 20, 10, 0, tzinfo=PARIS),
    datetime(2021, 3, 31, 23, 59, 59, tzinfo=PARIS),
    datetime(2021, 4, 1, 0, 0, tzinfo=PARIS),
    datetime(2021, 4, 10, 10, 0, tzinfo=PARIS),
    datetime(2021, 5, 31, 23, 59, 59, tzinfo=PARIS),
    datetime(2021, 6, 30, 23, 59, 59, tzinfo=PARIS),
    datetime(2021, 7, 1, 0, 0, tzinfo=PARIS),
]
picks = st.integers(min_value=0, max_value=15)


def within(first: datetime, last: datetime) -> st.SearchStrategy[datetime]:
    """An instant from `first` to `last` (Paris time), its two ends included."""
    naive = st.datetimes(min_value=first.replace(tzinfo=None), max_value=last.replace(tzinfo=None))
    return st.one_of(st.sampled_from([first, last]), naive.map(lambda d: d.replace(tzinfo=PARIS)))


instants = st.one_of(
    st.sampled_from(KEY_INSTANTS),
    within(datetime(2021, 2, 10, tzinfo=PARIS), datetime(2021, 7, 15, tzinfo=PARIS)),
)


#: When each onward event is on time in hdf-2021's calendar (the deadlines' whole days included).
ON_TIME = {
    "submit": within(datetime(2021, 2, 15, tzinfo=PARIS), datetime(2021, 3, 31, 23, 59, 59, tzinfo=PARIS)),
    "select": within(datetime(2021, 4, 1, tzinfo=PARIS), datetime(2021, 5, 31, 23, 59, 59, tzinfo=PARIS)),
    "promote": within(datetime(2021, 4, 1, tzinfo=PARIS), datetime(2021, 6, 30, 23, 59, 59, tzinfo=PARIS)),
    "file_needs": within(datetime(2021, 4, 1, tzinfo=PARIS), datetime(2021, 6, 30, tzinfo=PARIS)),
    "sign_agreement": within(datetime(2021, 4, 1, tzinfo=PARIS), datetime(2021, 6, 30, 23, 59, 59, tzinfo=PARIS)),
}


def amounts() -> st.SearchStrategy[str]:
    """Amounts in euros as typed: mostly well-formed, some zero, negative or malformed."""
    return st.one_of(
        st.integers(min_value=1, max_value=400_000_00).map(lambda c: f"{c // 100}.{c % 100:02d}"),
        st.sampled_from(["0", "-1", "1e3", "12,5", "0.001", "232000", "116000", "100000"]),
    )


def params_for(event: str, *, complete: bool = False) -> st.SearchStrategy[dict[str, str]]:
    """Random parameters for `event`: the ones it takes, or (unless `complete`) sometimes none."""
    if event == "select":
        base: st.SearchStrategy[dict[str, str]] = st.fixed_dictionaries(
            {"group": st.sampled_from(["A", "A", "A", "B", "C", "D"])}
        )
    elif event == "verify_usage":
        value = st.integers(min_value=0, max_value=100).map(str)
        base = st.fixed_dictionaries({"dui_actifs": value, "ins_qualifiees": value})
    elif event in ("record_repayment", "waive_recovery"):
        base = st.fixed_dictionaries({"amount": amounts(), "reason": st.just("décision")})
        if event == "record_repayment":
            base = base.map(lambda p: {"amount": p["amount"], "reference": "VIR"})
    else:
        spec = lifecycle.EVENTS_BY_NAME[event]
        base = st.just({p.name: "x" for p in spec.params})
    return base if complete else st.one_of(base, base, st.just({}))


#: The event that moves a project on from each state, as a programme team fires it.
ONWARD = {
    "application": "submit",
    "selection": "select",
    "needs_statement": "file_needs",
    "vendor_contract": "sign_contract",
    "agreement": "sign_agreement",
    "configuration": "finish_configuration",
    "rollout": "finish_rollout",
    "usage_evaluation": "verify_usage",
    "waitlisted": "promote",
    "recovery": "record_repayment",
}


class MoneyMachine(RuleBasedStateMachine):
    """The engine over a fresh database; `specs` are the project files it may register."""

    specs: list[ProjectSpec]
    campaigns: dict[str, Campaign]
    new_database: Callable[[contextlib.ExitStack], str]

    def __init__(self) -> None:
        super().__init__()
        self.stack = contextlib.ExitStack()
        self.engine = make_engine(self.new_database(self.stack))
        self.stack.callback(self.engine.dispose)
        self.clock = SimulatedClock(datetime(2021, 2, 20, 10, tzinfo=PARIS))
        self.workflow = Workflow(self.engine, self.campaigns, self.clock)
        self.ids: list[int] = []
        self.released: dict[tuple[int, int], datetime] = {}  # (project, tranche) → when, as first seen

    def teardown(self) -> None:
        self.stack.close()

    def _project(self, pick: int) -> int:
        return self.ids[pick % len(self.ids)]

    def _attempt(self, action: Callable[[], Any]) -> bool:
        """Run a command; a refusal by the rules (or of bad input) is an answer, anything else a bug."""
        try:
            result = action()
        except EsmsError as error:
            event(f"refused: {type(error).__name__}")
            return False
        if isinstance(result, int):  # a registration
            self.ids.append(result)
            return True
        for change in result if isinstance(result, list) else [result]:
            event(f"{change.event} -> {change.dest}")
            for tranche in getattr(change, "released", ()):
                key = (change.project_id, tranche.number)
                assert key not in self.released, f"tranche {tranche.number} of {change.project_id} released twice"
                self.released[key] = change.at
        return True

    # --- rules -------------------------------------------------------------------------------------------------

    @initialize()
    def register_two(self) -> None:
        """Every run starts with two projects of the small campaign, sharing no ESMS: the first paid its first
        tranche (in configuration), the second submitted (in selection)."""
        self.ids.extend(self.workflow.register_many(self.specs[:2], "test"))
        first, second = self.ids
        for project_id, name, params, day in (
            (first, "submit", {}, datetime(2021, 3, 1, tzinfo=PARIS)),
            (second, "submit", {}, datetime(2021, 3, 1, tzinfo=PARIS)),
            (first, "select", {"group": "A"}, datetime(2021, 4, 1, tzinfo=PARIS)),
            (first, "file_needs", {"reference": "R"}, datetime(2021, 4, 2, tzinfo=PARIS)),
            (first, "sign_contract", {"vendor": "V"}, datetime(2021, 4, 3, tzinfo=PARIS)),
            (first, "sign_agreement", {}, datetime(2021, 4, 4, tzinfo=PARIS)),
        ):
            self.clock.set(day)
            assert self._attempt(functools.partial(self.workflow.fire, project_id, name, params, "test"))

    @rule(spec=st.integers(min_value=0, max_value=3), at=instants)
    def register(self, spec: int, at: datetime) -> None:
        self.clock.set(at)
        self._attempt(lambda: self.workflow.register(self.specs[spec], "test"))

    @precondition(lambda self: self.ids)
    @rule(pick=picks, data=st.data(), at=instants)
    def fire(self, pick: int, data: st.DataObject, at: datetime) -> None:
        event = data.draw(st.sampled_from([e.name.value for e in lifecycle.EVENTS]), label="event")
        params = data.draw(params_for(event), label="params")
        self.clock.set(at)
        self._attempt(lambda: self.workflow.fire(self._project(pick), event, params, "test"))

    @precondition(lambda self: self.ids)
    @rule(pick=picks, data=st.data(), steps=st.sampled_from([1, 2, 5, 8]), on_time=st.sampled_from([True, True, False]))
    def walk_the_main_line(self, pick: int, data: st.DataObject, steps: int, on_time: bool) -> None:
        """Fire the events that move the project on, as a programme team would (random events rarely fit):
        up to `steps` of them, on time or at random instants, until one is refused."""
        project_id = self._project(pick)
        for _ in range(steps):
            with Session(self.engine) as session:
                project = session.get(Project, project_id)
                assert project is not None
                onward = ONWARD.get(project.state)
            if onward is None:
                return
            params = data.draw(params_for(onward, complete=True), label="params")
            timely = on_time and onward in ON_TIME
            self.clock.set(data.draw(ON_TIME[onward] if timely else instants, label="at"))
            if not self._attempt(functools.partial(self.workflow.fire, project_id, onward, params, "test")):
                return

    @precondition(lambda self: self.ids)
    @rule(pick=picks, at=instants)
    def give_up(self, pick: int, at: datetime) -> None:
        """The owner withdraws (after money or not), or the project lapses once its deadline passed."""
        project_id = self._project(pick)
        self.clock.set(at)
        self._attempt(lambda: self.workflow.fire(project_id, "withdraw", {"reason": "abandon"}, "test"))

    @precondition(lambda self: self.ids)
    @rule(pick=picks, state=st.sampled_from(lifecycle.STATES), at=instants)
    def force(self, pick: int, state: lifecycle.State, at: datetime) -> None:
        self.clock.set(at)
        self._attempt(lambda: self.workflow.force(self._project(pick), state.value, "mise en cohérence", "ars"))

    @precondition(lambda self: self.ids)
    @rule(
        pick=picks,
        number=st.sampled_from([1, 1, 2, 2, 3, 0, 4]),
        actor=st.sampled_from(NAMES),
        approver=st.sampled_from(NAMES),
        at=instants,
    )
    def release(self, pick: int, number: int, actor: str, approver: str, at: datetime) -> None:
        self.clock.set(at)
        self._attempt(lambda: self.workflow.release(self._project(pick), number, "pièce reçue", actor, approver))

    @precondition(lambda self: self.ids)
    @rule(
        pick=picks,
        event=st.sampled_from(["record_repayment", "waive_recovery"]),
        how=st.sampled_from(["all", "half", "cent", "over", "zero", "rest-1"]),
        at=instants,
    )
    def settle(self, pick: int, event: str, how: str, at: datetime) -> None:
        """A repayment or a waiver sized on what the project owes: all of it, part, one cent too many…"""
        project_id = self._project(pick)
        with Session(self.engine) as session:
            project = session.get(Project, project_id)
            assert project is not None
            released = sum(
                t.amount_cents
                for t in session.exec(select(Tranche).where(Tranche.project_id == project_id))
                if t.released_at is not None
            )
            balance = released - project.repaid_cents - project.waived_cents
        cents = {
            "all": balance,
            "half": balance // 2,
            "cent": 1,
            "over": balance + 1,
            "zero": 0,
            "rest-1": balance - 1,
        }[how]
        params = {"amount": f"{cents // 100}.{cents % 100:02d}" if cents >= 0 else "-1"}
        params.update({"reason": "remise gracieuse"} if event == "waive_recovery" else {"reference": "VIR"})
        self.clock.set(at)
        self._attempt(lambda: self.workflow.fire(project_id, event, params, "test"))

    @rule(at=instants)
    def sweep(self, at: datetime) -> None:
        self.clock.set(at)
        for lapse in sweep(self.workflow).transitions:
            # A lapse releases nothing.
            assert lapse.dest in (lifecycle.State.LAPSED, lifecycle.State.RECOVERY)

    # --- invariants --------------------------------------------------------------------------------------------

    @invariant()
    def money_is_defensible(self) -> None:
        with Session(self.engine) as session:
            projects = list(session.exec(select(Project).order_by(col(Project.id))))
            tranches = list(session.exec(select(Tranche)))
            for project in projects:
                assert project.id is not None
                mine = [t for t in tranches if t.project_id == project.id]
                released = sum(t.amount_cents for t in mine if t.released_at is not None)
                assert released <= project.total_cents
                assert released - project.repaid_cents - project.waived_cents >= 0
                # A released tranche is never undone, nor stamped again.
                for tranche in mine:
                    first = self.released.get((project.id, tranche.number))
                    if first is not None:
                        assert tranche.released_at is not None
                        assert tranche.released_at == first
                    else:
                        assert tranche.released_at is None, "a tranche released by no change"
                live = project.state not in lifecycle.ENDS_WITHOUT_MONEY or released > 0
                if live:
                    finess = session.exec(select(Esms.finess).where(Esms.project_id == project.id)).all()
                    assert esms_held(session, finess, excluding=project.id) == []
            for campaign in self.campaigns.values():
                assert committed_cents(session, campaign.id) <= campaign.envelope_cents
        report = check(self.engine, self.campaigns)
        assert report.violations == (), [v.line() for v in report.violations]


def small_campaign(config_dir: Path) -> None:
    text = (CONFIG_DIR / "campaigns" / "hdf-2021.toml").read_text(encoding="utf-8")
    text = text.replace('id = "hdf-2021"', f'id = "{SMALL}"')
    text = re.sub(r"(?m)^envelope = .*$", f'envelope = "{ENVELOPE}"', text)
    (config_dir / "campaigns" / f"{SMALL}.toml").write_text(text, encoding="utf-8")


def project_specs(folder: Path) -> list[ProjectSpec]:
    """Four projects: 0 and 2 share 15 ESMS, 1 and 3 share 15 ESMS; 3 is in another campaign (hdf-2021)."""
    first, second = folder / "first", folder / "second"
    first.mkdir()
    second.mkdir()
    files = [
        write_project(first, campaign=SMALL, esms=20, small=4),  # 580 000 EUR, ESMS 591000000…591000019
        write_project(first, campaign=SMALL, esms=15, small=0),  # 375 000 EUR, ESMS 591001000…591001014
        write_project(second, campaign=SMALL, esms=15, small=0),  # 375 000 EUR, ESMS 591000000…591000014
        write_project(second, campaign="hdf-2021", esms=20, small=4),  # ESMS 591001000…591001019
    ]
    return [load_project_file(f) for f in files]


# On PostgreSQL the full Hypothesis profile takes minutes (a schema per example, a round trip per query): slow.
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_random_histories_keep_the_money_defensible(
    backend: str, config_dir: Path, tmp_path: Path, install_schema: Callable[[str], None]
) -> None:
    if backend == "postgresql" and _postgres_url() is None:
        pytest.skip("PostgreSQL tests skipped: set ESMS_TEST_POSTGRES_URL")
    small_campaign(config_dir)
    counter = iter(range(10**9))

    def new_database(stack: contextlib.ExitStack) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'machine-{next(counter)}.sqlite3'}"
        else:
            url = stack.enter_context(_postgres_schema())
        install_schema(url)
        return url

    class Machine(MoneyMachine):
        pass

    Machine.specs = project_specs(tmp_path)
    Machine.campaigns = load_campaigns(config_dir)
    Machine.new_database = staticmethod(new_database)
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=examples(20),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
