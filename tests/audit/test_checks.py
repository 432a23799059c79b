"""The checks the domains hand to the chain's verification (``consult.audit.checks``), with a
check made up here: the audit trail runs any check, and knows none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
from flask import Flask
from sqlalchemy import text

from consult.audit import checks
from consult.audit import service as audit
from consult.extensions import db

WATCHED = "registry.household.updated"


@dataclass(frozen=True)
class Outcome:
    checked: int
    problems: tuple[str, ...]

    def lines(self) -> list[str]:
        if not self.problems:
            return [f"{self.checked} households agree."]
        return ["The households disagree:", *(f"- {p}" for p in self.problems)]


class Seen:
    """Keeps the seqs of the events it is shown; a problem unless it saw ``wanted``."""

    actions = frozenset({WATCHED})
    wanted = 4
    finished: ClassVar[list[Seen]] = []

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.payloads: list[str] = []

    def event(self, fields: audit.EventFields) -> None:
        self.seqs.append(fields.chain_seq)
        self.payloads.append(fields.payload)

    def finish(self, session) -> Outcome:
        assert session is db.session()
        Seen.finished.append(self)
        problems = () if len(self.seqs) == self.wanted else (f"saw {self.seqs}",)
        return Outcome(len(self.seqs), problems)


class WantsFive(Seen):
    wanted = 5


@pytest.fixture
def chain(compound):
    Seen.finished.clear()
    households = compound.buildings[0].households
    audit.record(None, "system.other", None, {"before": True})
    for n, household in enumerate(households):
        audit.record(None, WATCHED, household, {"n": n})
        audit.record(None, "system.other", None, {"between": n})
    return households


def test_a_check_is_shown_its_events_in_order_and_its_outcome_kept(chain):
    result = audit.verify(checks={"seen": Seen})
    assert result.ok and result.problem is None
    (check,) = Seen.finished
    assert check.seqs == [2, 4, 6, 8]  # its action only, in chain order
    assert check.payloads == [f'{{"n":{n}}}' for n in range(4)]
    assert result.checks["seen"] == Outcome(4, ())


def test_a_checks_problem_fails_the_verification(chain):
    result = audit.verify(checks={"seen": Seen, "five": WantsFive})
    assert result.problem is None and not result.ok
    assert not result.checks["seen"].problems
    assert result.checks["five"].problems == ("saw [2, 4, 6, 8]",)
    assert len(Seen.finished) == 2  # a new instance per check and verification


def test_a_broken_chain_is_reported_alone(chain):
    db.session.execute(text("UPDATE audit_event SET payload = :p WHERE chain_seq = 4"),
                       {"p": '{"n":9}'})
    result = audit.verify(checks={"seen": Seen})
    assert result.problem is not None and result.problem.seq == 4
    assert result.checks == {} and Seen.finished == []


def test_checks_are_registered_per_app():
    app, other = Flask("one"), Flask("two")
    checks.register(app, "seen", Seen)
    checks.register(app, "five", WantsFive)
    assert checks.registered(app) == {"seen": Seen, "five": WantsFive}
    assert checks.registered(other) == {}
    with app.app_context():
        assert checks.registered() == {"seen": Seen, "five": WantsFive}


def test_the_command_prints_every_checks_outcome(app, chain, runner, monkeypatch):
    registered = app.extensions["consult.audit_checks"]
    monkeypatch.setitem(registered, "seen", Seen)
    result = runner.invoke(args=["audit", "verify"], env={"CONSULT_LANG": "en"})
    assert result.exit_code == 0, result.output
    assert "The audit chain holds: 9 events" in result.output
    assert "4 households agree." in result.output
    assert "0 stored ballots match the audit trail." in result.output  # the app's own

    monkeypatch.setitem(registered, "seen", WantsFive)
    result = runner.invoke(args=["audit", "verify"], env={"CONSULT_LANG": "en"})
    assert result.exit_code == 1
    assert "The households disagree:\n- saw [2, 4, 6, 8]" in result.output
    assert "0 stored ballots match the audit trail." in result.output
