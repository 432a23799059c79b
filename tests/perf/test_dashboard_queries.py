"""The overview dashboard runs the same number of SQL statements for 3 compounds as for 30:
each column is one aggregate query over every compound shown, never one per compound."""

from __future__ import annotations

from typing import Any

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.core.models import utcnow
from consult.extensions import db
from consult.implementation.models import Evaluation
from tests import factories
from tests.perf.test_query_counts import counting


def _district(compounds: int) -> None:
    """``compounds`` compounds, each with a vote half cast and a consultation at the works
    stage with one evaluation."""
    from datetime import timedelta

    from consult.consultations.states import Action
    from consult.process import workflow

    community = factories.make_community()
    for n in range(compounds):
        compound = factories.make_compound(f"规模{n}", community)
        building = factories.make_building(compound)
        homes = [factories.make_household(building, room=f"{k + 1}01", owner_name=f"业主{k}")
                 for k in range(2)]
        vote = factories.make_consultation(compound, items=1)
        factories.walk_to(vote, "discussing")
        vote.vote_deadline = utcnow() + timedelta(days=3)
        workflow.apply(vote, Action.OPEN_VOTE, None)
        ballots.cast(None, vote, homes[0], {i.id: "agree" for i in vote.items},
                     BallotChannel.PAPER)
        done = factories.make_consultation(compound, items=1)
        factories.walk_to(done, "implementing")
        db.session.add(Evaluation(consultation_id=done.id, household_id=homes[1].id,
                                  rating="satisfied"))
    db.session.flush()


def _count(client: Any, path: str) -> int:
    with counting() as statements:
        response = client.get(path)
    assert response.status_code == 200
    return len(statements)


def test_statements_do_not_grow_with_compounds(client, login_as):
    login_as("admin")
    _district(3)
    small = _count(client, "/dashboard/")
    # Thirteen aggregate statements (the defect reports' counts are the thirteenth), plus the
    # session's user, its sign-in row, the header's unread notifications and the test
    # transaction's savepoint.
    assert small <= 17
    _district(27)
    large = _count(client, "/dashboard/")
    page = client.get("/dashboard/").get_data(as_text=True)
    assert page.count("规模") >= 30
    assert large == small
